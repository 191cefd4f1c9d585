//! `kmsconf explain CODE`: what a KMS or activation error code means, why it usually happens and
//! what to do, from the catalogue apply and doctor use.

use std::fmt::Write as _;
use std::process::ExitCode;

use kmsconf_app::output::ExplainOutput;
use kmsconf_model::catalog;

use super::output;
use super::CliError;

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The code: `0xC004F074`, `C004F074`, or decimal (`3221549172`, `-1073418124`).
    #[arg(value_name = "CODE", allow_hyphen_values = true)]
    code: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ExplainArgs) -> Result<ExitCode, CliError> {
    let code = catalog::parse_code(&args.code).ok_or_else(|| {
        CliError::Message(format!(
            "`{}` is not an error code: write it as `0xC004F074`, `C004F074` or in decimal",
            args.code
        ))
    })?;
    let doc = ExplainOutput::new(code);
    if args.json {
        output::emit(&output::json(&doc))?;
    } else {
        output::emit_text(&human(&doc))?;
    }
    Ok(if doc.known {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The human explanation of the code, or the line saying kmsconf does not know it.
fn human(doc: &ExplainOutput) -> String {
    let shown = &doc.code;
    let Some(i) = &doc.explanation else {
        return format!(
            "{shown}: unknown code: it is not in kmsconf's catalogue of KMS and activation error codes ({} codes, from {}); kmsconf does not guess at its meaning\n",
            catalog::all_codes().count(),
            catalog::CODES_SOURCE
        );
    };
    let mut out = format!("{shown}: {}\n", i.meaning);
    if let Some(cause) = &i.cause {
        let _ = writeln!(out, "  cause:   {cause}");
    }
    let _ = writeln!(out, "  fix:     {}", i.fix);
    if let Some(who) = &i.applies_to {
        let _ = writeln!(out, "  seen by: {who}");
    }
    let _ = writeln!(out, "  source:  {}", i.source);
    out
}
