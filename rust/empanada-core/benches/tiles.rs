// Criterion benches of the tiles kernels (filled in with the kernels).
fn main() {}
