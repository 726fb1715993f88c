pub mod bench;
pub mod eval;
pub mod inspect;
pub mod predict;
pub mod train;
