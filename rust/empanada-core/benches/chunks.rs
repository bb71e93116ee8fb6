// Criterion benches of the chunks kernels (filled in with the kernels).
fn main() {}
