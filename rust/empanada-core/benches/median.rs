// Criterion benches of the median kernels (filled in with the kernels).
fn main() {}
