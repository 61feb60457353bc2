//! SLCAN placeholder (implemented in a later commit).
