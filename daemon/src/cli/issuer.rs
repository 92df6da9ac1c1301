//! `palmgate issuer …`: the issuer (site) key that certifies cards and enrolment stations.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use palmgate_card::host::issuer::{files, init_issuer_dir};

/// `palmgate issuer` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum IssuerCommand {
    /// Create an issuer key pair and an enrolment authority certificate in DIR.
    Init(InitArgs),
}

/// Arguments of `palmgate issuer init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Directory to create the issuer files in (created if missing; existing files are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs a `palmgate issuer` subcommand.
pub fn run(command: IssuerCommand) -> anyhow::Result<ExitCode> {
    match command {
        IssuerCommand::Init(args) => {
            let (issuer, _authority) = init_issuer_dir(&args.out)
                .with_context(|| format!("creating issuer in {}", args.out.display()))?;
            println!(
                "issuer key id {}",
                hex::encode(issuer.public_key().key_id())
            );
            println!(
                "wrote {dir}/{} (secret), {dir}/{} (give to gates), {dir}/{} (secret), {dir}/{}",
                files::ISSUER_KEY,
                files::ISSUER_PUB,
                files::AUTHORITY_KEY,
                files::AUTHORITY_CERT,
                dir = args.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
