// Criterion benches of the labels kernels (filled in with the kernels).
fn main() {}
