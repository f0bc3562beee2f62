//! `callback-guard`, the command line: signs and sends callbacks exactly as their providers
//! do (Vobiz voice V3/V2/MA, WhatsApp and KYC webhooks, and every other scheme the filter
//! verifies, `webhook --scheme`), each with the signer next to the filter's verifier in the
//! core, so an operator can smoke-test a deployment: a genuine callback, its replay, a
//! tampered copy, a stale event; and checks plugin configurations offline (`check`). Also
//! installed as `vobiz-sim`, its name until this release.

mod check;
mod cli;
mod plan;
mod seal;
mod send;
mod util;

use std::process::ExitCode;

/// The command line run under the name it was invoked by (in its error messages).
pub fn main(name: &'static str) -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};

    let matches = cli::Cli::command().name(name).bin_name(name).get_matches();
    let cli = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::from(2)
        }
    }
}

/// Plans the requests, then prints them (`--dry-run`) or sends them. `Ok(false)`: some
/// request got no response or not the expected status.
fn run(cli: &cli::Cli) -> Result<bool, plan::Error> {
    let (genuine, common) = match &cli.command {
        cli::Command::Check(args) => return check::run(args),
        cli::Command::Seal(args) => return seal::run(args),
        cli::Command::Voice(args) => (plan::voice(args)?, &args.common),
        cli::Command::Whatsapp(args) => (plan::whatsapp(args)?, &args.common),
        cli::Command::Kyc(args) => (plan::kyc(args)?, &args.common),
        cli::Command::Webhook(args) => (plan::webhook(args)?, &args.common),
    };
    let requests = plan::sequence(genuine, common)?;
    if common.dry_run {
        print!("{}", plan::render(&requests));
        return Ok(true);
    }
    let agent = send::agent(common)?;
    Ok(send::run(&agent, &requests, common))
}
