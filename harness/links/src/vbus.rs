//! Virtual bus placeholder (implemented in a later commit).
