//! `palmgate issuer …`: the issuer (site) key that certifies cards and enrolment stations.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use palmgate_card::host::issuer::{IssuerKey, files, init_issuer_dir};
use palmgate_panel::credential_map::{self, CredentialMap};
use zeroize::Zeroizing;

use palmgate::gate::state::durable::replace_file;

/// `palmgate issuer` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum IssuerCommand {
    /// Create an issuer key pair and an enrolment authority certificate in DIR.
    Init(InitArgs),
    /// Sign a reader-mode credential map (`[panel] credential_map`) with the issuer key: writes
    /// MAP.sig beside it. The map is checked first: a map the gate would refuse is not signed.
    SignCredentialMap(SignCredentialMapArgs),
}

/// Arguments of `palmgate issuer sign-credential-map`.
#[derive(Debug, clap::Args)]
pub struct SignCredentialMapArgs {
    /// The issuer's private key file (`issuer.key`, as `palmgate issuer init` writes it).
    #[arg(long, value_name = "FILE")]
    pub issuer_key: PathBuf,
    /// The credential map (TOML; see docs/panel-integration.md).
    #[arg(value_name = "MAP")]
    pub map: PathBuf,
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
        IssuerCommand::SignCredentialMap(args) => {
            let (signature, entries) = sign_credential_map(&args.issuer_key, &args.map)?;
            println!(
                "signed {} ({entries} cards): {}",
                args.map.display(),
                signature.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Checks `map`, signs its exact bytes with the issuer key in `issuer_key` and replaces
/// `map.sig` atomically; the signature's path and the number of cards the map lists.
fn sign_credential_map(issuer_key: &Path, map: &Path) -> anyhow::Result<(PathBuf, usize)> {
    let key_text = Zeroizing::new(
        std::fs::read_to_string(issuer_key)
            .with_context(|| format!("{}: cannot read the issuer key", issuer_key.display()))?,
    );
    let key_bytes = Zeroizing::new(
        hex::decode(key_text.trim())
            .with_context(|| format!("{}: the issuer key is not hex", issuer_key.display()))?,
    );
    let issuer = IssuerKey::from_bytes(&key_bytes)
        .map_err(|error| anyhow::anyhow!("{}: {error}", issuer_key.display()))?;
    let bytes =
        std::fs::read(map).with_context(|| format!("{}: cannot read the map", map.display()))?;
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("{}: the map is not UTF-8 text", map.display()))?;
    let entries = CredentialMap::parse(map, text)?.len();
    let signature = credential_map::sign(&bytes, &issuer)?;
    let path = credential_map::signature_path(map);
    replace_file(&path, signature.as_bytes())
        .with_context(|| format!("{}: cannot write the signature", path.display()))?;
    Ok((path, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = "version = 1\n[[card]]\ncard_id = \"0102030405060708090a0b0c0d0e0f10\"\n\
                       format = \"h10301\"\nfacility = 12\nnumber = 3456\n";

    fn issuer_in(dir: &Path) -> IssuerKey {
        let (issuer, _authority) = init_issuer_dir(&dir.join("issuer")).expect("issuer");
        issuer
    }

    #[test]
    fn a_signed_map_loads_with_the_issuer_key_and_not_with_another() {
        let dir = tempfile::tempdir().expect("tempdir");
        let issuer = issuer_in(dir.path());
        let map = dir.path().join("credentials.toml");
        std::fs::write(&map, MAP).expect("map");
        let (signature, entries) =
            sign_credential_map(&dir.path().join("issuer").join(files::ISSUER_KEY), &map)
                .expect("signed");
        assert_eq!(entries, 1);
        assert_eq!(signature, credential_map::signature_path(&map));
        let loaded = CredentialMap::load(&map, &[issuer.public_key()]).expect("loads");
        assert_eq!(loaded.len(), 1);
        let other = IssuerKey::generate();
        assert!(CredentialMap::load(&map, &[other.public_key()]).is_err());
    }

    #[test]
    fn a_map_the_gate_would_refuse_is_not_signed() {
        let dir = tempfile::tempdir().expect("tempdir");
        issuer_in(dir.path());
        let map = dir.path().join("credentials.toml");
        std::fs::write(&map, MAP.replace("h10301", "h99999")).expect("map");
        let result = sign_credential_map(&dir.path().join("issuer").join(files::ISSUER_KEY), &map);
        assert!(result.is_err(), "{result:?}");
        assert!(!credential_map::signature_path(&map).exists());
    }
}
