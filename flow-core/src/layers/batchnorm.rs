//! TODO: batchnorm
