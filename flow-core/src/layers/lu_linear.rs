//! TODO: lu_linear
