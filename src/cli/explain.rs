//! `kmsconf explain CODE`: what a KMS or activation error code means, why it usually happens and
//! what to do, from the catalogue apply and doctor use.

use std::fmt::Write as _;
use std::process::ExitCode;

use kmsconf_model::catalog;

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
    let shown = catalog::format_code(code);
    let info = catalog::code(code);
    if args.json {
        let doc = match info {
            Some(i) => serde_json::json!({
                "code": shown, "known": true, "meaning": i.meaning, "cause": i.cause,
                "fix": i.fix, "applies_to": i.applies_to, "source": source(i),
            }),
            None => serde_json::json!({ "code": shown, "known": false }),
        };
        super::output::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ))?;
    } else {
        super::output::emit(&human(&shown, info))?;
    }
    Ok(if info.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The human explanation of `shown`, or the line saying kmsconf does not know it.
fn human(shown: &str, info: Option<&catalog::CodeInfo>) -> String {
    let Some(i) = info else {
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
    let _ = writeln!(out, "  source:  {}", source(i));
    out
}

fn source(info: &catalog::CodeInfo) -> String {
    match info.source.as_deref() {
        None => catalog::CODES_SOURCE.to_string(),
        Some(_) => "the Software Licensing Service's messages as kmsconf meets them on a KMS host (not on Microsoft's list)".to_string(),
    }
}
