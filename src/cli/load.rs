//! Loading a spec to run it: lint it (errors stop here, printed), then plan it.

use super::lint::render;
use crate::diagnostic::Style;
use crate::lint::lint_paths;
use crate::plan::{self, Parts, Plan};
use std::path::Path;

/// Why a spec cannot be run; the diagnostics were already printed to stderr.
#[derive(Debug)]
pub struct NotRunnable;

/// The plan of the spec at `path` for `environment`, of the `parts` asked for.
pub fn plan(
    path: &Path,
    environment: Option<&str>,
    style: Style,
    parts: Parts,
) -> Result<Plan, NotRunnable> {
    let mut files = lint_paths(&[path.to_path_buf()]).map_err(|error| {
        eprintln!("error: {error}");
        NotRunnable
    })?;
    let Some(file) = files.pop().filter(|_| files.is_empty()) else {
        eprintln!("error: `{}` must be one spec file", path.display());
        return Err(NotRunnable);
    };
    let Some(model) = &file.model else {
        let _ = render(
            std::slice::from_ref(&file),
            style,
            &mut std::io::stderr().lock(),
        );
        eprintln!(
            "error: `{}` has errors; `integ lint` explains them",
            path.display()
        );
        return Err(NotRunnable);
    };
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let compile = |parts| plan::compile_parts(model, environment, base_dir, parts);
    let fail = |error: plan::PlanError| {
        eprintln!("error: {error}");
        NotRunnable
    };
    match compile(parts) {
        Ok(plan) => Ok(plan),
        // The test blocks only lend their mocks: without them the plan is whole.
        Err(error) if parts == Parts::All => {
            let plan = compile(Parts::WithoutTests).map_err(fail)?;
            eprintln!(
                "warning: the test blocks cannot be used ({error}); responses are invented empty"
            );
            Ok(plan)
        }
        Err(error) => Err(fail(error)),
    }
}
