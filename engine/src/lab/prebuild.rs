//! Compiling a scenario's service ahead of its first start (`sdlab prebuild`, run by
//! install.sh and by the Codespaces configurations' postCreate): the learner's workspace is
//! prepared exactly as a start prepares it and built into the lab's target dir, so the first
//! start finds the kit, its dependencies and the service compiled in the profile the lab
//! runs them with, and only initialises and seeds its database.
//!
//! The workspace is the learner's own (`work/`, copied once and never overwritten), so this
//! never touches edits: on a lab already in use it just brings the build up to date.

use crate::build::Built;
use crate::catalog::Scenario;
use crate::workspace::{self, CodeSource};

use super::{Lab, LabError};

impl Lab {
    /// Prepares the learner's workspace for `scenario` (if it is not there yet) and builds it.
    /// Scenarios are built one at a time by the caller: each build resolves its own features,
    /// as the start that follows will, so the artifacts are the ones it looks for.
    pub async fn prebuild(&self, scenario: &Scenario) -> Result<Built, LabError> {
        let code = workspace::prepare(&self.home, &self.sources, scenario, &CodeSource::Learner)?;
        Ok(crate::build::build(
            &code,
            &self.home.target_dir(),
            &self.home.run_dir().join("bin"),
            None,
        )
        .await?)
    }
}
