//! What several integration tests share.

/// Every reference flow in `tests/fixtures` (made by `python/make_fixtures.py`), by file stem.
pub const FIXTURES: &[&str] = &[
    "zuko_maf_moons",
    "zuko_nsf_moons",
    "zuko_nsf_conditional",
    "zuko_realnvp_banana4",
    "nflows_maf_banana4",
    "nflows_rqcoupling_moons",
    "flowjax_maf_moons",
    "flowjax_rqcoupling_banana4",
    "zuko_maf_randperm_banana4",
    "zuko_nsf_randperm_banana4",
    "zuko_maf_passes2_conditional",
    "zuko_nsf_elu_moons",
    "zuko_realnvp_tanh_banana4",
    "zuko_maf_silu_moons",
    "flowjax_rqmaf_moons",
    "flowjax_iaf_moons",
    "flowjax_iaf_banana4",
    "flowjax_maf_tanh_moons",
    "flowjax_maf_conditional",
    "flowjax_rqcoupling_conditional",
    "flowjax_affinecoupling_banana4",
    "zuko_nice_randmask_conditional",
];
