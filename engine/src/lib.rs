//! sdlab-engine: placeholder.
