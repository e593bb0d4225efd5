//! sdlab-kit: placeholder.
