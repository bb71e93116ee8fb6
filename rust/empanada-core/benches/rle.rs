// Criterion benches of the rle kernels (filled in with the kernels).
fn main() {}
