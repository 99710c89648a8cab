//! The server's greeting and the capabilities it offers.

use std::fmt;

use serde_json::value::RawValue;

use crate::error::{excerpt, ConnectError};
use crate::json::Object;

/// The greeting a QMP server sends when a client connects:
/// `{"QMP": {"version": {"qemu": {"major", "minor", "micro"}, "package"}, "capabilities": [...]}}`.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = qmp_core::Client::connect_unix("/run/vm0/qmp.sock").await?;
/// let greeting = client.greeting();
/// println!("QEMU {} ({})", greeting.version, greeting.package);
/// if greeting.version < qmp_core::Version::new(8, 0, 0) {
///     println!("old QEMU");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// QEMU's version.
    pub version: Version,
    /// The package string, e.g. `Debian 1:10.0.2+ds-2+deb13u1~bpo12+1` (may be empty).
    pub package: String,
    /// Capabilities the server offers. Only the ones requested with
    /// [`ClientBuilder::capabilities`](crate::ClientBuilder::capabilities) are enabled; see
    /// [`Client::capabilities`](crate::Client::capabilities).
    pub capabilities: Vec<Capability>,
}

/// A QEMU version number. Ordered, so `version >= Version::new(9, 2, 0)` works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major version.
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// Micro (patch) version.
    pub micro: u64,
}

impl Version {
    /// A version from its three numbers.
    pub const fn new(major: u64, minor: u64, micro: u64) -> Self {
        Version {
            major,
            minor,
            micro,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// A protocol capability.
///
/// ```
/// # use qmp_core::Capability;
/// assert_eq!(Capability::from_name("oob"), Capability::Oob);
/// assert_eq!(Capability::from_name("new-thing").name(), "new-thing");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Out-of-band execution (`exec-oob`). Offered only by monitors whose chardev supports it
    /// (a socket, not a mux).
    Oob,
    /// A capability this library does not know.
    Other(String),
}

impl Capability {
    /// The capability with this wire name.
    pub fn from_name(name: &str) -> Self {
        match name {
            "oob" => Capability::Oob,
            other => Capability::Other(other.to_string()),
        }
    }

    /// The wire name.
    pub fn name(&self) -> &str {
        match self {
            Capability::Oob => "oob",
            Capability::Other(name) => name,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Greeting {
    /// Decodes the value of the `QMP` key. Unknown members are ignored.
    pub(crate) fn parse(body: &RawValue) -> Result<Greeting, ConnectError> {
        Self::decode(body.get()).map_err(|reason| ConnectError::MalformedGreeting {
            reason,
            excerpt: excerpt(body.get().as_bytes()),
        })
    }

    fn decode(text: &str) -> Result<Greeting, String> {
        let body = Object::parse(text).map_err(|e| e.to_string())?;
        let version_raw = body.get("version").ok_or("missing member `version`")?;
        let version = Object::parse(version_raw.get()).map_err(|e| format!("`version`: {e}"))?;
        let qemu_raw = version.get("qemu").ok_or("missing member `version.qemu`")?;
        let qemu = Object::parse(qemu_raw.get()).map_err(|e| format!("`version.qemu`: {e}"))?;
        let package = match version.get("package") {
            Some(_) => version.field::<String>("package")?,
            None => String::new(),
        };
        let capabilities: Vec<String> = body.field("capabilities")?;
        Ok(Greeting {
            version: Version {
                major: qemu.field("major")?,
                minor: qemu.field("minor")?,
                micro: qemu.field("micro")?,
            },
            package: package.trim().to_string(),
            capabilities: capabilities
                .iter()
                .map(|c| Capability::from_name(c))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Greeting, ConnectError> {
        let raw: Box<RawValue> = serde_json::from_str(s).unwrap();
        Greeting::parse(&raw)
    }

    #[test]
    fn qemu_10_greeting() {
        let g = parse(
            r#"{"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": "Debian 1:10.0.2"}, "capabilities": ["oob"]}"#,
        )
        .unwrap();
        assert_eq!(g.version, Version::new(10, 0, 2));
        assert_eq!(g.version.to_string(), "10.0.2");
        assert_eq!(g.package, "Debian 1:10.0.2");
        assert_eq!(g.capabilities, vec![Capability::Oob]);
    }

    #[test]
    fn unknown_members_and_capabilities_are_tolerated() {
        let g = parse(
            r#"{"version": {"qemu": {"micro": 0, "minor": 2, "major": 7, "extra": 1}, "package": " v7.2.0 "}, "capabilities": ["oob", "zz"], "new": true}"#,
        )
        .unwrap();
        assert_eq!(g.package, "v7.2.0");
        assert_eq!(g.capabilities[1], Capability::Other("zz".into()));
    }

    #[test]
    fn malformed_greetings() {
        for bad in [
            r#"{"capabilities": []}"#,
            r#"{"version": {"qemu": {"major": "x", "minor": 0, "micro": 0}}, "capabilities": []}"#,
            r#"{"version": {"qemu": {"major": 1, "minor": 0, "micro": 0}}, "capabilities": "oob"}"#,
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                matches!(err, ConnectError::MalformedGreeting { .. }),
                "{bad}"
            );
        }
    }
}
