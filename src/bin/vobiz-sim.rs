//! `vobiz-sim`: the sender simulator. Signs and sends Vobiz callbacks exactly as Vobiz
//! does (voice V3/V2/MA, WhatsApp and KYC webhooks), with the filter's own signing code,
//! so an operator can smoke-test a deployment: a genuine callback, its replay, a tampered
//! copy, a stale event.
//!
//! A native tool: for wasm32 (the filter's target) it builds to a stub, so that building
//! every target of the package for wasm32 still works.

#[cfg(not(target_arch = "wasm32"))]
#[path = "vobiz-sim/cli.rs"]
mod cli;
#[cfg(not(target_arch = "wasm32"))]
#[path = "vobiz-sim/plan.rs"]
mod plan;
#[cfg(not(target_arch = "wasm32"))]
#[path = "vobiz-sim/send.rs"]
mod send;
#[cfg(not(target_arch = "wasm32"))]
#[path = "vobiz-sim/util.rs"]
mod util;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    use clap::Parser;
    use std::process::ExitCode;

    let cli = cli::Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("vobiz-sim: {error}");
            ExitCode::from(2)
        }
    }
}

/// Plans the requests, then prints them (`--dry-run`) or sends them. `Ok(false)`: some
/// request got no response or not the expected status.
#[cfg(not(target_arch = "wasm32"))]
fn run(cli: &cli::Cli) -> Result<bool, plan::Error> {
    let (genuine, common) = match &cli.command {
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

#[cfg(target_arch = "wasm32")]
fn main() {
    eprintln!("vobiz-sim is a native tool: build it without --target wasm32-wasip1");
}
