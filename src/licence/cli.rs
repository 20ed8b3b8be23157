//! `bunker license keygen` and `bunker license sign`: everything an operator (or a test) needs
//! to issue licences. The private key never goes near the vault; only its public half is
//! configured there.

use std::io::Write;
use std::path::Path;

use super::format::{FORMAT, PrivateKey, Terms};
use crate::cli::{KeygenArgs, LicenseCommand, SignArgs};
use crate::config::ConfigError;

/// Runs a `license` sub-command.
pub fn run(command: LicenseCommand) -> Result<(), ConfigError> {
    match command {
        LicenseCommand::Keygen(args) => keygen(&args),
        LicenseCommand::Sign(args) => {
            let licence = sign(&args, chrono::Utc::now().timestamp())?;
            println!("{licence}");
            Ok(())
        }
    }
}

fn keygen(args: &KeygenArgs) -> Result<(), ConfigError> {
    let key = PrivateKey::generate();
    if let Some(path) = &args.private_key {
        write_private_key(path, &key)?;
        eprintln!("the private key is in {} (owner-only): keep it away from the vault's machines", path.display());
    } else {
        println!("private key: {}", key.to_hex().as_str());
    }
    println!("public key: {}", key.public().to_hex());
    eprintln!("set BUNKER_LICENSE_PUBLIC_KEY to the public key on every replica of the vault");
    Ok(())
}

/// Signs the licence `args` describe, issued at `now` (unix seconds).
pub fn sign(args: &SignArgs, now: i64) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(&args.key)
        .map_err(|err| ConfigError::Invalid(format!("cannot read {}: {err}", args.key.display())))?;
    let key = PrivateKey::from_hex(&text)
        .map_err(|err| ConfigError::Invalid(format!("{} is not a licence private key: {err}", args.key.display())))?;
    let expires = parse_expiry(&args.expires)?;
    if expires <= now {
        return Err(ConfigError::Invalid("--expires is in the past: no vault would accept the licence".into()));
    }
    let terms = Terms {
        v: FORMAT,
        customer: args.customer.trim().to_owned(),
        max_records: args.max_records,
        expires,
        issued: now,
    };
    key.sign(&terms).map_err(|err| ConfigError::Invalid(format!("cannot sign: {err}")))
}

/// `YYYY-MM-DD` (00:00 UTC that day) or unix seconds.
pub fn parse_expiry(text: &str) -> Result<i64, ConfigError> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|moment| moment.and_utc().timestamp())
        .ok_or_else(|| ConfigError::Invalid("--expires must be a date (YYYY-MM-DD) or unix seconds".into()))
}

fn write_private_key(path: &Path, key: &PrivateKey) -> Result<(), ConfigError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file =
        options.open(path).map_err(|err| ConfigError::Invalid(format!("cannot create {}: {err}", path.display())))?;
    writeln!(file, "{}", key.to_hex().as_str())
        .map_err(|err| ConfigError::Invalid(format!("cannot write {}: {err}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_parse_as_dates_or_seconds() {
        assert_eq!(parse_expiry("2030-01-01").ok(), Some(1_893_456_000));
        assert_eq!(parse_expiry("1893456000").ok(), Some(1_893_456_000));
        assert!(parse_expiry("2030-13-01").is_err());
        assert!(parse_expiry("next year").is_err());
    }

    #[test]
    fn a_key_made_by_keygen_signs_a_licence_its_public_half_verifies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("licence.key");
        let key = PrivateKey::generate();
        write_private_key(&path, &key).expect("written");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(write_private_key(&path, &key).is_err(), "an existing key file is never overwritten");
        let args =
            SignArgs { key: path, customer: "Acme Resale".into(), max_records: 5000, expires: "2099-12-31".into() };
        let licence = sign(&args, 1_800_000_000).expect("signed");
        let terms = key.public().verify(&licence).expect("verifies");
        assert_eq!(terms.customer, "Acme Resale");
        assert_eq!(terms.max_records, 5000);
        assert_eq!(terms.issued, 1_800_000_000);
        assert_eq!(Some(terms.expires), parse_expiry("2099-12-31").ok());
        assert!(sign(&SignArgs { expires: "1000".into(), ..args }, 1_800_000_000).is_err());
    }
}
