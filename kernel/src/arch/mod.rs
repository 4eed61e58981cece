//! Architecture-specific code. Only x86_64 exists; the split keeps the
//! portable parts of the kernel from growing hardware assumptions.
pub mod x86_64;
