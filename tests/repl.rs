//! `bangfu repl`: scripted sessions (snapshots), the `:set` diff against two
//! full `bangfu check` runs, and a pseudo-terminal session for completion
//! and history.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scripted(script: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bangfu"))
        .args(["repl", "examples/sample/ledger.json"])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bangfu repl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write the script");
    let output = child.wait_with_output().expect("bangfu repl ends");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn scripted_what_if_session() {
    let transcript = scripted(
        "count(villages where not poor and poor_households >= 20)\n\
         :set three_one.threshold 15\n\
         :violations three_one.first_secretary --in 513228\n\
         :why three_one.first_secretary 513228102203\n\
         :undo\n\
         :diff\n\
         :set three_one.threshold \"fifteen\"\n\
         :nonsense\n\
         count(villagez)\n\
         :params\n",
    );
    insta::assert_snapshot!(transcript);
}

fn check_keys(param: Option<&str>) -> BTreeSet<(String, String)> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bangfu"));
    command
        .args(["check", "examples/sample/ledger.json", "--format", "jsonl"])
        .current_dir(root());
    if let Some(param) = param {
        command.args(["--param", param]);
    }
    let output = command.output().expect("run bangfu check");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            (
                value["rule"].as_str().unwrap_or_default().to_string(),
                value["key"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn set_diff_equals_the_difference_of_two_checks() {
    for (param, value) in [
        ("three_one.threshold", "15"),
        ("three_one.threshold", "30"),
        ("exit.max_incidence", "0.002"),
    ] {
        let before = check_keys(None);
        let after = check_keys(Some(&format!("{param}={value}")));
        let transcript = scripted(&format!(":set {param} {value}\n"));
        let mut plus = BTreeSet::new();
        let mut minus = BTreeSet::new();
        for line in transcript.lines() {
            let (sign, rest) = line.split_at(line.len().min(2));
            let mut words = rest.split_whitespace();
            let (Some(rule), Some(key)) = (words.next(), words.next()) else {
                continue;
            };
            let entry = (rule.to_string(), key.trim_end_matches(':').to_string());
            match sign {
                "+ " if !rule.starts_with('…') => plus.insert(entry),
                "- " if !rule.starts_with('…') => minus.insert(entry),
                _ => false,
            };
        }
        let want_plus: BTreeSet<_> = after.difference(&before).cloned().collect();
        let want_minus: BTreeSet<_> = before.difference(&after).cloned().collect();
        assert!(
            want_plus.len() + want_minus.len() > 0,
            "{param}={value} should change something"
        );
        assert!(
            want_plus.len() <= 20 && want_minus.len() <= 20,
            "the diff lists at most 20 lines per side"
        );
        assert_eq!(plus, want_plus, "{param}={value}: appeared");
        assert_eq!(minus, want_minus, "{param}={value}: disappeared");
    }
}

#[test]
fn terminal_session_completes_and_keeps_history() {
    let history = std::env::temp_dir().join(format!("bangfu-history-{}", std::process::id()));
    let _ = std::fs::remove_file(&history);
    let binary = env!("CARGO_BIN_EXE_bangfu");
    let command = format!("{binary} repl examples/sample/ledger.json");
    for round in 0..2 {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!(
            "cd {} && BANGFU_HISTORY={} NO_COLOR=1 {command}",
            root().display(),
            history.display()
        ));
        let mut session =
            rexpect::session::spawn_command(cmd, Some(20_000)).expect("spawn in a pseudo-terminal");
        session.exp_string("bangfu> ").expect("a prompt");
        if round == 0 {
            // Tab completes a rule id.
            session.send("three_one.fir").expect("type");
            session.send("\t").expect("tab");
            session.send_line("").expect("enter");
            session
                .exp_string("three_one.first_secretary")
                .expect("completed rule id is echoed");
            // Type the next line only at the next prompt: a line typed while
            // the REPL is still answering may be flushed when the line editor
            // puts the terminal back in raw mode.
            session.exp_string("bangfu> ").expect("the next prompt");
            session.send_line("count(villages)").expect("type");
            session.exp_string("50").expect("fifty villages");
        } else {
            // The previous session's last line is in the history.
            session.send("\x1b[A").expect("up arrow");
            session.send_line("").expect("enter");
            session
                .exp_string("50")
                .expect("history recalled count(villages)");
        }
        session.exp_string("bangfu> ").expect("a prompt again");
        session.send_line(":quit").expect("quit");
        session.exp_eof().expect("the session ends");
    }
    let saved = std::fs::read_to_string(&history).unwrap_or_default();
    assert!(saved.contains("count(villages)"), "history file: {saved}");
    let _ = std::fs::remove_file(&history);
}

#[test]
fn saved_scenario_reproduces_the_session_in_check() {
    let scenario =
        std::env::temp_dir().join(format!("bangfu-scenario-{}.yaml", std::process::id()));
    let transcript = scripted(&format!(
        ":set three_one.threshold 15\n:set exit.max_incidence 0.002\n:save {}\n:violations\n",
        scenario.display()
    ));
    let in_session: BTreeSet<(String, String)> = transcript
        .lines()
        .skip_while(|line| !line.starts_with("> :violations"))
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((
                words.next()?.to_string(),
                words.next()?.trim_end_matches(':').to_string(),
            ))
        })
        .filter(|(rule, _)| rule.contains('.'))
        .collect();
    let output = Command::new(env!("CARGO_BIN_EXE_bangfu"))
        .args([
            "check",
            "examples/sample/ledger.json",
            "--format",
            "jsonl",
            "--scenario",
        ])
        .arg(&scenario)
        .current_dir(root())
        .output()
        .expect("run bangfu check");
    let in_check: BTreeSet<(String, String)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            (
                value["rule"].as_str().unwrap_or_default().to_string(),
                value["key"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let _ = std::fs::remove_file(&scenario);
    // `:violations` lists the first 50 and counts them all.
    let total: usize = transcript
        .lines()
        .rev()
        .find_map(|line| line.strip_suffix(" violations")?.parse().ok())
        .unwrap_or(0);
    assert_eq!(
        total,
        in_check.len(),
        "as many violations in check as in the session"
    );
    assert!(
        in_check.len() > 77,
        "the scenario adds violations to the sample's 77"
    );
    assert_eq!(in_session.len(), 50);
    assert!(
        in_session.is_subset(&in_check),
        "{:?}",
        in_session.difference(&in_check).collect::<Vec<_>>()
    );
}

#[test]
fn record_changes_are_diffed_undone_and_never_written() {
    let data = root().join("examples/sample/ledger.json");
    let before = std::fs::read(&data).expect("sample");
    let transcript = scripted(
        ":edit villages 510822101202 collective_income = 5000\n\
         :edit villages 510822101202 collective_income = \"lots\"\n\
         :delete cadres C510822000004\n\
         :add teams {id: \"T9\", kind: work_team, villages: [\"510822101202\"], members: 3}\n\
         :add teams {id: \"T9\", kind: work_team}\n\
         :undo\n:undo\n:undo\n:diff\n\
         :delete villages nope\n\
         :edit villages 510822101202 colective_income = 1\n",
    );
    insta::assert_snapshot!(transcript);
    assert_eq!(
        std::fs::read(&data).expect("sample"),
        before,
        "the data file is never written"
    );
}
