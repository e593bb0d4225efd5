//! sdlab-embedded-postgres: placeholder.
