// Criterion benches of the components kernels (filled in with the kernels).
fn main() {}
