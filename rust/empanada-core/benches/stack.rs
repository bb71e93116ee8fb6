// Criterion benches of the stack kernels (filled in with the kernels).
fn main() {}
