//! A typed mock QEMU for unit tests (cargo feature `mock`): [`MockQemu`] serves QMP in
//! process, on a unix socket of its own and over in-memory streams, answers each command
//! with the typed handler a test registered for it, and behaves like QEMU 10.0 everywhere
//! else.
//!
//! What keeps a test honest:
//! - **Every command is checked as QEMU checks it** before any handler runs, against the
//!   schema this API was generated from ([`crate::schema::builtin`], or one given to
//!   [`MockBuilder::schema`]): an unknown command gets `CommandNotFound`, an unknown, missing
//!   or mistyped argument gets QEMU's `GenericError` with QEMU's description (see
//!   `qmp_codegen::validate`, compared with real QEMU in `tests/tests/validate_qemu.rs`).
//! - **Every reply and event a test supplies is checked against the schema**: a typed reply
//!   is encoded and walked through the command's return type, so a reply QEMU could never
//!   send (a missing required member, an enum value QEMU does not have) is refused. The
//!   client then gets a `GenericError` starting with `mock:`, the fault is kept, and
//!   [`MockQemu::verify`] (or dropping the mock) fails the test with it.
//! - **Unhandled commands** answer `CommandNotFound`, as a QEMU without the command would,
//!   except the defaults QEMU always has: `query-version` (the configured version),
//!   `query-commands` (every command of the schema) and `query-qmp-schema` (the schema as
//!   QEMU's introspection, type names unmasked, so [`Qmp::supports`](crate::Qmp::supports)
//!   works). [`MockBuilder::unhandled`] changes that; a handler replaces a default.
//!
//! Inspection: [`MockQemu::sent`] lists every command the client sent (name and arguments,
//! in order, refused ones included); [`MockQemu::sent_command`] asks whether a typed command
//! value was sent.
//!
//! # Example
//!
//! ```
//! use qmp_api::mock::{MockQemu, Reply};
//! use qmp_api::{commands, events, types, EventKind, QmpError};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mock = MockQemu::start().await?;
//! mock.on::<commands::QueryStatus, _, _>(|_args| async {
//!     Ok(types::StatusInfo::new(true, types::RunState::Running))
//! });
//! // `stop` sends STOP, then replies, as QEMU does.
//! mock.replies::<commands::Stop>([Reply::ok(()).event_before(EventKind::Stop, ())]);
//!
//! let qmp = mock.connect().await?;
//! assert!(qmp.query_status().await?.running);
//! let mut stops = qmp.subscribe([EventKind::Stop]);
//! qmp.stop().await?;
//! assert!(matches!(stops.next().await, Some(Ok(qmp_api::Received { event: qmp_api::Event::Stop, .. }))));
//!
//! // Bad arguments get QEMU's own error.
//! let err = qmp.raw().execute("qom-list", serde_json::json!({"pth": "/"})).await.unwrap_err();
//! assert_eq!(err.qmp_error().map(|e| e.desc.as_str()), Some("Parameter 'path' is missing"));
//!
//! assert_eq!(mock.sent().iter().map(|s| s.command.as_str()).collect::<Vec<_>>(),
//!            ["query-status", "stop", "qom-list"]);
//! qmp.close().await;
//! mock.verify()?;
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use qmp_codegen::validate::{self, ValidationError};
use qmp_core::server::{Call, Server};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::schema::Schema;
use crate::{Command, ConnectError, EventKind, Qmp, QmpError, Version};

mod introspection;

type BoxFuture = Pin<Box<dyn Future<Output = Result<Value, QmpError>> + Send>>;
type Dispatch = Arc<dyn Fn(Call) -> BoxFuture + Send + Sync>;
/// Events (name, data) in the order they are to be sent.
type EventList = Vec<(String, Option<Value>)>;

/// A command the client sent, as received (refused ones included).
///
/// ```no_run
/// # fn demo(mock: qmp_api::mock::MockQemu) {
/// let first = &mock.sent()[0];
/// assert_eq!((first.command.as_str(), &first.arguments), ("qom-list", &serde_json::json!({"path": "/"})));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The command name.
    pub command: String,
    /// The `arguments` object (empty when none was sent).
    pub arguments: Value,
}

/// Why a mock could not start or found a fault in what a test supplied.
///
/// ```no_run
/// # async fn demo(mock: qmp_api::mock::MockQemu) {
/// use qmp_api::{mock::MockError, EventKind};
/// match mock.emit(EventKind::Stop, serde_json::json!({"x": 1})).await {
///     Err(MockError::NotInSchema { error, .. }) => assert_eq!(error.path, "x"),
///     other => panic!("{other:?}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// The unix socket could not be created.
    #[error("mock QEMU: cannot listen on {path}: {error}")]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// What failed.
        error: qmp_core::ListenError,
    },
    /// A reply or event the test supplied does not match the schema: QEMU could never send
    /// it. Fix the test's value (the path names the member). Displayed in terms of members,
    /// not arguments: `mock QEMU: member 'reason' is unexpected in the test's reply to
    /// query-status, which QEMU could never send`.
    #[error(
        "mock QEMU: {} in the test's {what}, which QEMU could never send",
        member_fault(error)
    )]
    NotInSchema {
        /// What was checked (`reply to query-status`, `event STOP`).
        what: String,
        /// The fault.
        error: Box<ValidationError>,
    },
    /// A typed value could not be encoded as JSON.
    #[error("mock QEMU: cannot encode the test's {what}: {error}")]
    Encode {
        /// What was encoded.
        what: String,
        /// serde's message.
        error: String,
    },
}

/// A reply's or event's fault, in terms of members (the validator speaks of a command's
/// arguments, in QEMU's words: "Parameter 'x' is unexpected").
fn member_fault(error: &ValidationError) -> String {
    use qmp_codegen::validate::ValidationErrorKind as K;
    let member = if error.path.is_empty() {
        "the value".to_string()
    } else {
        format!("member '{}'", error.path)
    };
    let mut text = match &error.kind {
        K::UnknownArgument => format!("{member} is unexpected"),
        K::MissingArgument => format!("{member} is missing"),
        K::WrongType { expected } => format!("{member} should be of type {expected}"),
        K::OutOfRange { ty } => format!("{member} is out of range for {ty}"),
        K::BadEnumValue { value } => format!("{member} does not accept value '{value}'"),
        K::ArgumentsNotObject => format!("{member} is not a JSON object"),
        K::NotEmptyObject => format!("{member} should be {{}} (the command returns nothing)"),
        _ => error.message.clone(),
    };
    if let Some(s) = &error.suggestion {
        text.push_str(&format!("; did you mean `{s}`?"));
    }
    text
}

/// What a handler's command received: its arguments, already checked against the schema.
///
/// The generated command types only encode, so arguments are read as JSON or decoded into
/// any type that implements `Deserialize` (the generated `types::*` do: for `blockdev-add`,
/// `args.decode::<types::BlockdevOptions>()`).
///
/// ```
/// # async fn demo(mock: &qmp_api::mock::MockQemu) {
/// use qmp_api::{commands, QmpError};
/// mock.on::<commands::BlockdevDel, _, _>(|args| async move {
///     let node: Option<String> = args.get("node-name")?;
///     Err(QmpError::new("GenericError", format!("Failed to find node with node-name='{}'",
///                                               node.unwrap_or_default())))
/// });
/// # }
/// ```
pub struct Args<C> {
    call: Arc<Call>,
    shared: std::sync::Weak<Shared>,
    after: Arc<Mutex<EventList>>,
    _command: PhantomData<fn() -> C>,
}

impl<C: Command> Args<C> {
    /// The `arguments` object.
    ///
    /// ```
    /// # fn demo(args: qmp_api::mock::Args<qmp_api::commands::QomList>) {
    /// let path = args.json()["path"].as_str();
    /// # }
    /// ```
    pub fn json(&self) -> &Map<String, Value> {
        self.call.arguments()
    }

    /// Member `name` decoded into `T`; `None` when absent.
    ///
    /// # Errors
    ///
    /// A `GenericError` naming the member when it does not decode into `T` (returned from a
    /// handler with `?`, the client gets it).
    ///
    /// ```
    /// # fn demo(args: qmp_api::mock::Args<qmp_api::commands::QomList>) -> Result<(), qmp_api::QmpError> {
    /// let path: Option<String> = args.get("path")?;
    /// # Ok(()) }
    /// ```
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, QmpError> {
        match self.call.arguments().get(name) {
            None => Ok(None),
            Some(v) => T::deserialize(v).map(Some).map_err(|e| {
                QmpError::new("GenericError", format!("mock QEMU: argument '{name}': {e}"))
            }),
        }
    }

    /// All arguments decoded into `T`.
    ///
    /// # Errors
    ///
    /// A `GenericError` with serde's message when they do not decode into `T`.
    ///
    /// ```
    /// # fn demo(args: qmp_api::mock::Args<qmp_api::commands::BlockdevAdd>) -> Result<(), qmp_api::QmpError> {
    /// let options: qmp_api::types::BlockdevOptions = args.decode()?;
    /// # Ok(()) }
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, QmpError> {
        self.call.decode()
    }

    /// Whether the arguments are exactly what `command` encodes to.
    ///
    /// ```
    /// # fn demo(args: qmp_api::mock::Args<qmp_api::commands::QomList>) {
    /// let root = args.is(&qmp_api::commands::QomList { path: "/".into() });
    /// # }
    /// ```
    pub fn is(&self, command: &C) -> bool {
        serde_json::to_value(command)
            .is_ok_and(|v| same_arguments(&v, &Value::Object(self.json().clone())))
    }

    /// Sends event `kind` with `data` (`()` for none) now, before this command's reply (QEMU
    /// sends `STOP` before `stop`'s reply, `DEVICE_DELETED` may come before `device_del`'s).
    ///
    /// # Errors
    ///
    /// A `GenericError` (`mock QEMU: ...`, also kept for [`MockQemu::verify`]) when the data does
    /// not match the event's definition; returned from a handler with `?`, the client gets it.
    ///
    /// ```
    /// # async fn demo(mock: &qmp_api::mock::MockQemu) {
    /// use qmp_api::{commands, EventKind};
    /// mock.on::<commands::Stop, _, _>(|args| async move {
    ///     args.emit(EventKind::Stop, ()).await?;
    ///     Ok(())
    /// });
    /// # }
    /// ```
    pub async fn emit(&self, kind: EventKind, data: impl Serialize) -> Result<(), QmpError> {
        let data = encode_event_data(&data);
        if let Some(shared) = self.shared.upgrade() {
            shared.check_event(kind.as_str(), data.as_ref())?;
        }
        // A client that left is no fault of the test's.
        let _ = self.call.emit(kind.as_str(), data).await;
        Ok(())
    }

    /// Sends event `kind` with `data` (`()` for none) right after this command's reply; the
    /// data is checked against the schema like a reply.
    pub fn emit_after_reply(&self, kind: EventKind, data: impl Serialize) {
        let data = encode_event_data(&data);
        lock(&self.after).push((kind.as_str().to_string(), data));
    }
}

/// One scripted answer for [`MockQemu::replies`]: a result, then events sent after it.
///
/// ```
/// use qmp_api::{commands, mock::Reply, types, EventKind};
/// let replies = [
///     Reply::<commands::QueryStatus>::ok(types::StatusInfo::new(true, types::RunState::Running)),
/// ];
/// ```
pub struct Reply<C: Command> {
    result: Result<Value, QmpError>,
    encode_error: Option<String>,
    before: Vec<(String, Option<Value>)>,
    events: Vec<(String, Option<Value>)>,
    _command: PhantomData<fn() -> C>,
}

impl<C: Command> Reply<C>
where
    C::Output: Serialize,
{
    /// A successful reply with `output` (`()` for commands that return nothing).
    ///
    /// ```
    /// use qmp_api::{commands, mock::Reply};
    /// let reply = Reply::<commands::Stop>::ok(());
    /// ```
    pub fn ok(output: C::Output) -> Self {
        let (result, encode_error) = match serde_json::to_value(&output) {
            Ok(v) => (Ok(v), None),
            Err(e) => (Ok(Value::Null), Some(e.to_string())),
        };
        Reply {
            result,
            encode_error,
            before: Vec::new(),
            events: Vec::new(),
            _command: PhantomData,
        }
    }
}

impl<C: Command> Reply<C> {
    /// An error reply (`QmpError::new("DeviceNotFound", "...")`).
    ///
    /// ```
    /// use qmp_api::{commands, mock::Reply, QmpError};
    /// let reply = Reply::<commands::Stop>::err(QmpError::new("GenericError", "no"));
    /// ```
    pub fn err(error: QmpError) -> Self {
        Reply {
            result: Err(error),
            encode_error: None,
            before: Vec::new(),
            events: Vec::new(),
            _command: PhantomData,
        }
    }

    /// Adds event `kind` with `data` (`()` for none) before the reply, in order (QEMU sends
    /// `STOP` before `stop`'s reply).
    ///
    /// ```
    /// use qmp_api::{commands, mock::Reply, EventKind};
    /// let reply = Reply::<commands::Stop>::ok(()).event_before(EventKind::Stop, ());
    /// ```
    pub fn event_before(mut self, kind: EventKind, data: impl Serialize) -> Self {
        self.before
            .push((kind.as_str().to_string(), encode_event_data(&data)));
        self
    }

    /// Adds event `kind` with `data` (`()` for none) after the reply, in order.
    ///
    /// ```
    /// use qmp_api::{commands, mock::Reply, EventKind};
    /// // `system_reset` only requests the reset: QEMU's main loop does it (and sends RESET)
    /// // after the reply. Events QEMU sends while a command runs (STOP for `stop`, RESUME
    /// // for `cont`) go in `event_before` instead.
    /// let reset = qmp_api::json::json!({"guest": false, "reason": "host-qmp-system-reset"});
    /// let reply = Reply::<commands::SystemReset>::ok(()).then_event(EventKind::Reset, reset);
    /// ```
    pub fn then_event(mut self, kind: EventKind, data: impl Serialize) -> Self {
        self.events
            .push((kind.as_str().to_string(), encode_event_data(&data)));
        self
    }
}

/// Builds a [`MockQemu`] with a version, a schema or a policy for unhandled commands.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use qmp_api::mock::{MockQemu, Unhandled};
/// let mock = MockQemu::builder()
///     .version(qmp_api::Version::new(9, 2, 0))
///     .unhandled(Unhandled::EmptyReturn)
///     .start()
///     .await?;
/// let qmp = mock.connect().await?;
/// assert_eq!(qmp.server_version(), qmp_api::Version::new(9, 2, 0));
/// # Ok(()) }
/// ```
pub struct MockBuilder {
    version: Version,
    schema: Option<Arc<Schema>>,
    unhandled: Unhandled,
}

/// What a command the schema has but no handler answers gets.
///
/// ```
/// assert_eq!(qmp_api::mock::Unhandled::default(), qmp_api::mock::Unhandled::CommandNotFound);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Unhandled {
    /// `CommandNotFound`, as from a QEMU without the command (the default), except the
    /// defaults every QEMU has (`query-version`, `query-commands`, `query-qmp-schema`).
    #[default]
    CommandNotFound,
    /// `{}` for commands that return nothing, `CommandNotFound` for the others (a reply
    /// cannot be made up); the defaults as above.
    EmptyReturn,
}

impl MockBuilder {
    /// The version in the greeting and in `query-version` (default 10.0.2).
    ///
    /// ```
    /// let builder = qmp_api::mock::MockQemu::builder().version(qmp_api::Version::new(8, 2, 0));
    /// ```
    pub fn version(mut self, version: Version) -> Self {
        self.version = version;
        self
    }

    /// Checks commands and replies against `schema` instead of the built-in one (e.g. a
    /// server's `query-qmp-schema` read with `qmp_codegen::load_introspection`).
    ///
    /// ```no_run
    /// # async fn demo(dump: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// // A mock that knows exactly what an older QEMU had (its `query-qmp-schema` reply).
    /// let schema = qmp_codegen::load_introspection(dump)?;
    /// let mock = qmp_api::mock::MockQemu::builder()
    ///     .version(qmp_api::Version::new(7, 2, 0))
    ///     .schema(std::sync::Arc::new(schema))
    ///     .start()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn schema(mut self, schema: Arc<Schema>) -> Self {
        self.schema = Some(schema);
        self
    }

    /// What unhandled commands get (default [`Unhandled::CommandNotFound`]).
    ///
    /// ```
    /// use qmp_api::mock::{MockQemu, Unhandled};
    /// let builder = MockQemu::builder().unhandled(Unhandled::EmptyReturn);
    /// ```
    pub fn unhandled(mut self, unhandled: Unhandled) -> Self {
        self.unhandled = unhandled;
        self
    }

    /// Starts the mock on a unix socket in a fresh temporary directory.
    ///
    /// # Errors
    ///
    /// [`MockError::Listen`] when the socket cannot be created.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), qmp_api::mock::MockError> {
    /// let mock = qmp_api::mock::MockQemu::builder().start().await?;
    /// assert!(mock.path().exists());
    /// # Ok(()) }
    /// ```
    pub async fn start(self) -> Result<MockQemu, MockError> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "qmp-mock-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let path = dir.join("qmp.sock");
        let listen = |error| MockError::Listen {
            path: path.clone(),
            error,
        };
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|error| {
            listen(qmp_core::ListenError::Io {
                target: dir.display().to_string(),
                error,
            })
        })?;
        let schema = match self.schema {
            Some(s) => SchemaRef::Owned(s),
            None => SchemaRef::Builtin(crate::schema::builtin()),
        };
        let shared = Arc::new(Shared {
            schema,
            version: self.version,
            unhandled: self.unhandled,
            handlers: Mutex::new(HashMap::new()),
            sent: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            introspection: OnceLock::new(),
        });
        let dispatch = shared.clone();
        let server = Server::builder()
            .version(self.version, "")
            .fallback(move |call: Call| {
                let shared = dispatch.clone();
                async move { shared.dispatch(call).await }
            })
            .max_sessions(16)
            .bind_unix(&path)
            .map_err(listen)?;
        Ok(MockQemu {
            server,
            shared,
            dir,
            path,
        })
    }
}

enum SchemaRef {
    Builtin(&'static Schema),
    Owned(Arc<Schema>),
}

impl SchemaRef {
    fn get(&self) -> &Schema {
        match self {
            SchemaRef::Builtin(s) => s,
            SchemaRef::Owned(s) => s,
        }
    }
}

struct Shared {
    schema: SchemaRef,
    version: Version,
    unhandled: Unhandled,
    handlers: Mutex<HashMap<String, Dispatch>>,
    sent: Mutex<Vec<Sent>>,
    faults: Mutex<Vec<MockError>>,
    /// `query-qmp-schema`'s reply, made on first use.
    introspection: OnceLock<Value>,
}

impl Shared {
    async fn dispatch(self: Arc<Self>, call: Call) -> Result<Value, QmpError> {
        let name = call.name().to_string();
        let arguments = Value::Object(call.arguments().clone());
        lock(&self.sent).push(Sent {
            command: name.clone(),
            arguments: arguments.clone(),
        });
        let schema = self.schema.get();
        validate::validate_command(schema, &name, Some(&arguments))
            .map_err(|e| QmpError::new(e.class.as_str(), e.message))?;
        let handler = lock(&self.handlers).get(&name).cloned();
        if let Some(handler) = handler {
            return handler(call).await;
        }
        match name.as_str() {
            "query-version" => {
                let v = self.version;
                return Ok(json!({
                    "qemu": {"major": v.major, "minor": v.minor, "micro": v.micro},
                    "package": "",
                }));
            }
            "query-commands" => {
                let names: Vec<Value> =
                    schema.commands().map(|c| json!({"name": c.name})).collect();
                return Ok(Value::Array(names));
            }
            "query-qmp-schema" => {
                let reply = self
                    .introspection
                    .get_or_init(|| introspection::schema_info(schema));
                return Ok(reply.clone());
            }
            _ => {}
        }
        let returns_nothing = schema.command(&name).is_some_and(|c| c.returns.is_none());
        if self.unhandled == Unhandled::EmptyReturn && returns_nothing {
            return Ok(json!({}));
        }
        Err(QmpError::new(
            "CommandNotFound",
            format!("The command {name} has not been found"),
        ))
    }

    /// Checks a reply the test supplied; a fault is kept and turned into an error reply.
    fn check_reply(&self, command: &str, value: Value) -> Result<Value, QmpError> {
        let schema = self.schema.get();
        let returns_nothing = schema.command(command).is_some_and(|c| c.returns.is_none());
        // `()` encodes as null; QEMU writes `{}` for commands that return nothing.
        let value = if value.is_null() && returns_nothing {
            json!({})
        } else {
            value
        };
        match validate::validate_return(schema, command, &value) {
            Ok(()) => Ok(value),
            Err(error) => Err(self.fault(MockError::NotInSchema {
                what: format!("reply to {command}"),
                error: Box::new(error),
            })),
        }
    }

    fn check_event(&self, name: &str, data: Option<&Value>) -> Result<(), QmpError> {
        validate::validate_event(self.schema.get(), name, data).map_err(|error| {
            self.fault(MockError::NotInSchema {
                what: format!("event {name}"),
                error: Box::new(error),
            })
        })
    }

    fn fault(&self, fault: MockError) -> QmpError {
        let error = QmpError::new("GenericError", fault.to_string());
        lock(&self.faults).push(fault);
        error
    }
}

/// An in-process mock QEMU: see the [module docs](self).
///
/// Dropping it stops the server, removes its socket directory, and panics (failing the test)
/// if a reply or event the test supplied did not match the schema and [`verify`](Self::verify)
/// was not called.
pub struct MockQemu {
    server: Server,
    shared: Arc<Shared>,
    dir: PathBuf,
    path: PathBuf,
}

impl MockQemu {
    /// Starts a mock with the defaults (QEMU 10.0.2, the built-in schema) on a unix socket in
    /// a fresh temporary directory.
    ///
    /// # Errors
    ///
    /// [`MockError::Listen`] when the socket cannot be created.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mock = qmp_api::mock::MockQemu::start().await?;
    /// let qmp = qmp_api::Qmp::connect_unix(mock.path()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start() -> Result<MockQemu, MockError> {
        Self::builder().start().await
    }

    /// A builder for a mock with other settings.
    ///
    /// ```
    /// let builder = qmp_api::mock::MockQemu::builder();
    /// ```
    pub fn builder() -> MockBuilder {
        MockBuilder {
            version: Version::new(10, 0, 2),
            schema: None,
            unhandled: Unhandled::CommandNotFound,
        }
    }

    /// The unix socket path, for code under test that connects by itself.
    ///
    /// ```no_run
    /// # async fn demo(mock: qmp_api::mock::MockQemu) -> Result<(), qmp_api::ConnectError> {
    /// let qmp = qmp_api::Qmp::connect_unix(mock.path()).await?;
    /// # Ok(()) }
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying server (to emit untyped events, look at sessions, close them).
    ///
    /// ```no_run
    /// # async fn demo(mock: qmp_api::mock::MockQemu) {
    /// // An event outside the schema (the typed `emit` would refuse it).
    /// mock.server().broadcast("X_VENDOR_EVENT", None).await;
    /// # }
    /// ```
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// A typed client connected to the mock over an in-memory stream.
    ///
    /// # Errors
    ///
    /// As [`QmpBuilder::connect_stream`](crate::QmpBuilder::connect_stream).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mock = qmp_api::mock::MockQemu::start().await?;
    /// let qmp = mock.connect().await?;
    /// assert_eq!(qmp.server_version(), qmp_api::Version::new(10, 0, 2));
    /// # Ok(()) }
    /// ```
    pub async fn connect(&self) -> Result<Qmp, ConnectError> {
        let (ours, theirs) = tokio::io::duplex(256 * 1024);
        self.server.serve_stream(theirs);
        Qmp::builder().connect_stream(ours).await
    }

    /// Answers command `C` with `handler`, replacing an earlier one. The handler gets the
    /// checked [`Args`] and returns the typed result or a QMP error; the result is checked
    /// against the schema before it is sent.
    ///
    /// ```
    /// # async fn demo(mock: &qmp_api::mock::MockQemu) {
    /// use qmp_api::{commands, types, QmpError};
    /// mock.on::<commands::QomList, _, _>(|args| async move {
    ///     match args.get::<String>("path")?.as_deref() {
    ///         Some("/") => Ok(vec![types::ObjectPropertyInfo::new("machine", "child<container>")]),
    ///         _ => Err(QmpError::new("DeviceNotFound", "Device not found")),
    ///     }
    /// });
    /// # }
    /// ```
    pub fn on<C, F, Fut>(&self, handler: F)
    where
        C: Command,
        C::Output: Serialize,
        F: Fn(Args<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C::Output, QmpError>> + Send + 'static,
    {
        let shared = Arc::downgrade(&self.shared);
        let handler = Arc::new(handler);
        let dispatch: Dispatch = Arc::new(move |call: Call| {
            let shared = shared.clone();
            let handler = handler.clone();
            Box::pin(async move {
                let after = Arc::new(Mutex::new(Vec::new()));
                let call = Arc::new(call);
                let args = Args {
                    call: call.clone(),
                    shared: shared.clone(),
                    after: after.clone(),
                    _command: PhantomData,
                };
                let result = handler(args).await;
                let shared = shared
                    .upgrade()
                    .ok_or_else(|| QmpError::new("GenericError", "mock QEMU: stopped"))?;
                let events = std::mem::take(&mut *lock(&after));
                finish::<C>(&shared, &call, result.map(encode_output::<C>), events)
            })
        });
        lock(&self.shared.handlers).insert(C::NAME.to_string(), dispatch);
    }

    /// Answers command `C` with `replies`, one per call, in order; once they are used up,
    /// the command is unhandled again.
    ///
    /// ```
    /// # async fn demo(mock: &qmp_api::mock::MockQemu) {
    /// use qmp_api::{commands, mock::Reply, EventKind, QmpError};
    /// mock.replies::<commands::Cont>([
    ///     Reply::err(QmpError::new("GenericError", "not yet")),
    ///     // QEMU sends RESUME while `cont` runs, before its reply.
    ///     Reply::ok(()).event_before(EventKind::Resume, ()),
    /// ]);
    /// # }
    /// ```
    pub fn replies<C: Command>(&self, replies: impl IntoIterator<Item = Reply<C>>) {
        let queue: Arc<Mutex<VecDeque<Reply<C>>>> =
            Arc::new(Mutex::new(replies.into_iter().collect()));
        let shared = Arc::downgrade(&self.shared);
        let dispatch: Dispatch = Arc::new(move |call: Call| {
            let next = lock(&queue).pop_front();
            let shared = shared.upgrade();
            Box::pin(async move {
                let shared =
                    shared.ok_or_else(|| QmpError::new("GenericError", "mock QEMU: stopped"))?;
                let Some(reply) = next else {
                    return Err(QmpError::new(
                        "CommandNotFound",
                        format!("The command {} has not been found", C::NAME),
                    ));
                };
                if let Some(error) = reply.encode_error {
                    return Err(shared.fault(MockError::Encode {
                        what: format!("reply to {}", C::NAME),
                        error,
                    }));
                }
                for (name, data) in &reply.before {
                    shared.check_event(name, data.as_ref())?;
                }
                for (name, data) in reply.before {
                    let _ = call.emit(&name, data).await;
                }
                finish::<C>(&shared, &call, reply.result, reply.events)
            })
        });
        lock(&self.shared.handlers).insert(C::NAME.to_string(), dispatch);
    }

    /// Sends event `kind` with `data` (`()` for none) to every connected client, after
    /// checking it against the schema.
    ///
    /// # Errors
    ///
    /// [`MockError::NotInSchema`] (also kept for [`verify`](Self::verify)) when the data
    /// does not match the event's definition; [`MockError::Encode`] if it cannot be encoded.
    ///
    /// ```
    /// # async fn demo(mock: &qmp_api::mock::MockQemu) -> Result<(), qmp_api::mock::MockError> {
    /// use qmp_api::{events, types, EventKind};
    /// mock.emit(EventKind::Shutdown, events::Shutdown {
    ///     guest: true,
    ///     reason: Some(types::ShutdownCause::GuestShutdown),
    /// }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn emit(&self, kind: EventKind, data: impl Serialize) -> Result<usize, MockError> {
        let name = kind.as_str();
        let data = match serde_json::to_value(&data) {
            Ok(Value::Null) => None,
            Ok(v) => Some(v),
            Err(e) => {
                return Err(MockError::Encode {
                    what: format!("event {name}"),
                    error: e.to_string(),
                })
            }
        };
        if let Err(error) = validate::validate_event(self.shared.schema.get(), name, data.as_ref())
        {
            let fault = MockError::NotInSchema {
                what: format!("event {name}"),
                error: Box::new(error.clone()),
            };
            lock(&self.shared.faults).push(fault);
            return Err(MockError::NotInSchema {
                what: format!("event {name}"),
                error: Box::new(error),
            });
        }
        Ok(self.server.broadcast(name, data).await)
    }

    /// Every command the clients sent so far, in order (refused ones included).
    ///
    /// ```no_run
    /// # fn demo(mock: qmp_api::mock::MockQemu) {
    /// let names: Vec<String> = mock.sent().into_iter().map(|s| s.command).collect();
    /// assert_eq!(names, ["query-status", "stop"]);
    /// # }
    /// ```
    pub fn sent(&self) -> Vec<Sent> {
        lock(&self.shared.sent).clone()
    }

    /// The arguments of every `C` sent so far, in order.
    ///
    /// ```no_run
    /// # fn demo(mock: qmp_api::mock::MockQemu) {
    /// use qmp_api::commands;
    /// let args = mock.sent_arguments::<commands::BlockdevDel>();
    /// assert_eq!(args, [serde_json::json!({"node-name": "disk0"})]);
    /// # }
    /// ```
    pub fn sent_arguments<C: Command>(&self) -> Vec<Value> {
        lock(&self.shared.sent)
            .iter()
            .filter(|s| s.command == C::NAME)
            .map(|s| s.arguments.clone())
            .collect()
    }

    /// Whether `command` (compared by its JSON encoding) was sent.
    ///
    /// ```
    /// # fn demo(mock: &qmp_api::mock::MockQemu) {
    /// assert!(mock.sent_command(&qmp_api::commands::QomList { path: "/machine".into() }));
    /// # }
    /// ```
    pub fn sent_command<C: Command>(&self, command: &C) -> bool {
        let Ok(expected) = serde_json::to_value(command) else {
            return false;
        };
        lock(&self.shared.sent)
            .iter()
            .any(|s| s.command == C::NAME && same_arguments(&expected, &s.arguments))
    }

    /// Takes the faults found in what the test supplied (replies and events QEMU could not
    /// send), so that dropping the mock does not panic.
    ///
    /// # Errors
    ///
    /// The first fault, if any.
    ///
    /// ```no_run
    /// # fn demo(mock: qmp_api::mock::MockQemu) {
    /// if let Err(fault) = mock.verify() {
    ///     panic!("{fault}"); // names the reply or event and the member at fault
    /// }
    /// # }
    /// ```
    pub fn verify(&self) -> Result<(), MockError> {
        let mut faults = std::mem::take(&mut *lock(&self.shared.faults));
        if faults.is_empty() {
            Ok(())
        } else {
            Err(faults.remove(0))
        }
    }

    /// Stops serving: clients are disconnected.
    ///
    /// ```no_run
    /// # async fn demo(mock: qmp_api::mock::MockQemu) {
    /// mock.shutdown().await; // the code under test now sees QEMU go away
    /// # }
    /// ```
    pub async fn shutdown(&self) {
        self.server.shutdown().await;
    }
}

impl Drop for MockQemu {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let faults = std::mem::take(&mut *lock(&self.shared.faults));
        if !faults.is_empty() && !std::thread::panicking() {
            let list: Vec<String> = faults.iter().map(ToString::to_string).collect();
            panic!(
                "MockQemu: the test supplied replies or events QEMU could never send:\n{}",
                list.join("\n")
            );
        }
    }
}

impl std::fmt::Debug for MockQemu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockQemu")
            .field("path", &self.path)
            .field("version", &self.shared.version)
            .finish()
    }
}

/// Checks a result and its events, queues the events after the reply.
fn finish<C: Command>(
    shared: &Shared,
    call: &Call,
    result: Result<Value, QmpError>,
    events: Vec<(String, Option<Value>)>,
) -> Result<Value, QmpError> {
    let result = shared.check_reply(C::NAME, result?)?;
    for (name, data) in &events {
        shared.check_event(name, data.as_ref())?;
    }
    for (name, data) in events {
        call.emit_after_reply(&name, data);
    }
    Ok(result)
}

fn encode_output<C: Command>(output: C::Output) -> Value
where
    C::Output: Serialize,
{
    // Generated types always encode; a failure shows up as a schema fault (null).
    serde_json::to_value(&output).unwrap_or(Value::Null)
}

fn encode_event_data(data: &impl Serialize) -> Option<Value> {
    match serde_json::to_value(data) {
        Ok(Value::Null) | Err(_) => None,
        Ok(v) => Some(v),
    }
}

/// Arguments compare equal when their JSON is equal, `null`/`{}` meaning none.
fn same_arguments(a: &Value, b: &Value) -> bool {
    let none = |v: &Value| v.is_null() || v.as_object().is_some_and(Map::is_empty);
    (none(a) && none(b)) || a == b
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
