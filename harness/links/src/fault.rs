//! Fault layer placeholder (implemented in a later commit).
