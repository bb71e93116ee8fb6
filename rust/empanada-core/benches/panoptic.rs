// Criterion benches of the panoptic kernels (filled in with the kernels).
fn main() {}
