//! `[check.dependency_fault]`: when, for how long and how the stub dependency fails during the
//! check load (a provider that answers too late, or is down).

use super::Ctx;
use crate::catalog::raw::RawDependencyFault;
use crate::catalog::{CatalogError, CheckSpec, DependencyFault, DependencySpec, FaultAnswer};

/// Sets `check.dependency_fault` from `raw`: inside the check load, on a scenario with a
/// `[topology.dependency]`, and `late_by` exactly when the answer is late.
pub(super) fn dependency_fault(
    cx: &Ctx,
    raw: Option<RawDependencyFault>,
    check: &mut CheckSpec,
    dependency: Option<&DependencySpec>,
) -> Result<(), CatalogError> {
    let Some(raw) = raw else { return Ok(()) };
    let Some(dependency) = dependency else {
        return Err(cx.invalid(
            "check.dependency_fault",
            "a [topology.dependency] to fail (the scenario has none)",
        ));
    };
    let at = cx.duration("check.dependency_fault.at", &raw.at)?;
    let lasting = cx.duration("check.dependency_fault.lasting", &raw.lasting)?;
    let total: std::time::Duration = check.profile.stages.iter().map(|s| s.duration).sum();
    if at + lasting > total {
        return Err(cx.invalid(
            "check.dependency_fault",
            format!(
                "a window inside the check load (its {:.0} s), got {} + {}",
                total.as_secs_f64(),
                raw.at,
                raw.lasting
            ),
        ));
    }
    let answer = match (raw.answer.as_str(), &raw.late_by) {
        ("late", Some(text)) => {
            let late_by = cx.duration("check.dependency_fault.late_by", text)?;
            if late_by <= dependency.latency {
                return Err(cx.invalid(
                    "check.dependency_fault.late_by",
                    format!(
                        "longer than the dependency's usual latency ({} ms), got {text:?}",
                        dependency.latency.as_millis()
                    ),
                ));
            }
            FaultAnswer::Late(late_by)
        }
        ("late", None) => {
            return Err(cx.invalid(
                "check.dependency_fault.late_by",
                "how late a late answer comes, e.g. \"3s\"",
            ))
        }
        ("down", None) => FaultAnswer::Down,
        ("down", Some(_)) => {
            return Err(cx.invalid(
                "check.dependency_fault.late_by",
                "nothing with answer = \"down\" (a down dependency answers 503 at once)",
            ))
        }
        (other, _) => {
            return Err(cx.invalid(
                "check.dependency_fault.answer",
                format!("\"late\" or \"down\", got {other:?}"),
            ))
        }
    };
    check.dependency_fault = Some(DependencyFault {
        at,
        lasting,
        answer,
    });
    Ok(())
}
