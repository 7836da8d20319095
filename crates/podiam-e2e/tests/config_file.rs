//! `podiam server --config FILE` and `PODIAM_<FLAG>` variables (issue 19): the file's keys are
//! the long flag names, a `[server]` table wins over shared keys, a variable wins over the
//! file, a flag wins over both, and a key that is not a flag stops the server with one line.

use podiam_e2e::{ClientEnv, Server, ServerOptions};

fn account_of(server: &Server) -> String {
    ClientEnv::root(server)
        .aws(&["sts", "get-caller-identity", "--query", "Account"])
        .json()
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn flags_come_from_the_config_file_unless_given() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("podiam.toml");
    std::fs::write(
        &file,
        "account-id = \"111111111111\"\nregion = \"eu-west-1\"\n[server]\naccount-id = \"222222222222\"\n[agent]\ncluster-name = \"ignored-here\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config = file.display().to_string();
    let from_file = Server::start_with(&ServerOptions {
        args: vec!["--config".to_owned(), config.clone()],
        ..ServerOptions::default()
    });
    assert_eq!(
        account_of(&from_file),
        "222222222222",
        "[server] wins over shared keys"
    );
    let flagged = Server::start_with(&ServerOptions {
        args: vec![
            "--config".to_owned(),
            config.clone(),
            "--account-id".to_owned(),
            "333333333333".to_owned(),
        ],
        ..ServerOptions::default()
    });
    assert_eq!(
        account_of(&flagged),
        "333333333333",
        "a flag wins over the file"
    );
    let env = vec![("PODIAM_ACCOUNT_ID".to_owned(), "444444444444".to_owned())];
    let from_env = Server::start_with(&ServerOptions {
        args: vec!["--config".to_owned(), config.clone()],
        env: env.clone(),
        ..ServerOptions::default()
    });
    assert_eq!(
        account_of(&from_env),
        "444444444444",
        "a variable wins over the file"
    );
    let flag_and_env = Server::start_with(&ServerOptions {
        args: vec![
            "--config".to_owned(),
            config.clone(),
            "--account-id".to_owned(),
            "555555555555".to_owned(),
        ],
        env,
        ..ServerOptions::default()
    });
    assert_eq!(
        account_of(&flag_and_env),
        "555555555555",
        "a flag wins over a variable"
    );
    // The config file itself can come from PODIAM_CONFIG.
    let named_by_env = Server::start_with(&ServerOptions {
        env: vec![("PODIAM_CONFIG".to_owned(), config.clone())],
        ..ServerOptions::default()
    });
    assert_eq!(account_of(&named_by_env), "222222222222", "PODIAM_CONFIG");

    std::fs::write(&file, "acount-id = \"1\"\n").unwrap_or_else(|e| panic!("{e}"));
    let out = std::process::Command::new(podiam_e2e::podiam_bin())
        .args(["server", "--config"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("\"acount-id\" is not a flag"), "{stderr}");
}
