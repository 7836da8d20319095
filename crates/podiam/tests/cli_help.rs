//! Every `--help` text, and the README's single-command sessions, as trycmd snapshots
//! (`tests/cmd/*.toml` and their `.stdout`): a change in what users read shows up in review.
//! Regenerate after a deliberate change with `TRYCMD=overwrite cargo test -p podiam --test cli_help`.

#[test]
fn help_texts_and_single_commands() {
    trycmd::TestCases::new()
        .register_bin("podiam", trycmd::cargo::cargo_bin("podiam"))
        .case("tests/cmd/*.toml");
}
