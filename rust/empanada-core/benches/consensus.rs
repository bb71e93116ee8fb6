// Criterion benches of the consensus kernels (filled in with the kernels).
fn main() {}
