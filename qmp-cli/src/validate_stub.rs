//! TEMPORARY stand-in until qmp_codegen::validate lands (cherry-picked from i15-mock).
#![allow(missing_docs, dead_code)]
use qmp_codegen::model::Schema;
use serde_json::Value;
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationErrorKind { UnknownCommand, Other }
#[derive(Debug, Clone)]
pub struct ValidationError { pub path: String, pub message: String, pub suggestion: Option<String>, pub kind: ValidationErrorKind }
impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.suggestion { write!(f, "; did you mean `{s}`?")?; }
        Ok(())
    }
}
pub fn validate_command(schema: &Schema, command: &str, _a: Option<&Value>) -> Result<(), ValidationError> {
    if schema.command(command).is_some() { return Ok(()); }
    Err(ValidationError { path: String::new(), message: format!("The command {command} has not been found"),
        suggestion: crate::schema::nearest(command, schema.commands().map(|c| c.name.as_str())).map(str::to_string), kind: ValidationErrorKind::UnknownCommand })
}
