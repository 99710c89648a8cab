//! Malformed normalized files: errors name the definition (index and name) and the problem.

use qmp_codegen::normalized;

fn fail(text: &str) -> String {
    match normalized::from_str("n.json", text) {
        Ok(_) => panic!("should fail: {text}"),
        Err(e) => e.to_string(),
    }
}

fn doc(defs: &str) -> String {
    format!(
        "{{\"format\": \"qmp-normalized-schema/1\", \"pragmas\": {{}}, \"definitions\": [{defs}]}}"
    )
}

#[test]
fn normalized_errors_name_the_definition_and_the_problem() {
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "n.json: line 1 column 2: not valid JSON"),
        ("{\"format\": \"other/2\", \"definitions\": []}".into(), "unsupported \"format\" \"other/2\""),
        ("{\"definitions\": []}".into(), "missing \"format\""),
        (
            "{\"format\": \"qmp-normalized-schema/1\", \"definitions\": [], \"extra\": 1}".into(),
            "unknown key \"extra\" in the top-level object",
        ),
        (doc("{\"kind\": \"thing\", \"name\": \"X\"}"), "n.json: definitions[0] 'X': unknown \"kind\" \"thing\""),
        (
            doc("{\"kind\": \"enum\", \"name\": \"Ok\", \"values\": []}, {\"kind\": \"struct\", \"name\": \"Bad\", \"members\": [], \"bogus\": true}"),
            "n.json: definitions[1] 'Bad': unknown key \"bogus\" in a struct definition",
        ),
        (
            doc("{\"kind\": \"struct\", \"name\": \"Bad\", \"members\": [{\"name\": \"m\", \"type\": \"Nope\"}]}"),
            "n.json: definitions[0]: struct 'Bad', member 'm': unknown type 'Nope'",
        ),
        (
            doc("{\"kind\": \"struct\", \"name\": \"Bad\", \"members\": [{\"name\": \"m\", \"type\": 5}]}"),
            "definitions[0] 'Bad': \"type\" of \"members\"[0] must be a type name",
        ),
        (
            doc("{\"kind\": \"command\", \"name\": \"go\", \"boxed\": false}"),
            "definitions[0] 'go': \"boxed\" may only be true",
        ),
        (
            doc("{\"kind\": \"struct\", \"name\": \"Bad\", \"members\": [], \"if\": {\"all\": []}}"),
            "definitions[0] 'Bad': condition \"all\" takes a non-empty array",
        ),
        (
            doc("{\"kind\": \"struct\", \"name\": \"Dup\", \"members\": []}, {\"kind\": \"struct\", \"name\": \"Dup\", \"members\": []}"),
            "n.json: definitions[1]: struct 'Dup': 'Dup' is already defined as struct at n.json: definitions[0]",
        ),
    ];
    for (text, want) in cases {
        let msg = fail(&text);
        assert!(msg.contains(want), "expected {want:?} in: {msg}");
    }
}
