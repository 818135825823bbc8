//! TODO: permutation
