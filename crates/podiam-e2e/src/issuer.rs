//! A Kubernetes-style OIDC issuer on loopback: a key made by `podiam keys generate`, the
//! documents of `podiam token discovery` served over plain HTTP, tokens from `podiam token mint`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::podiam_bin;

/// A running test issuer.
#[derive(Debug)]
pub struct TestIssuer {
    url: String,
    key: PathBuf,
    jwks: PathBuf,
    _dir: tempfile::TempDir,
}

fn podiam(args: &[&str]) -> String {
    let output = Command::new(podiam_bin())
        .args(args)
        .output()
        .expect("podiam runs");
    assert!(
        output.status.success(),
        "podiam {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl TestIssuer {
    /// Generates an RS256 key and serves discovery and JWKS at `http://127.0.0.1:PORT/id/<ID>`.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("podiam-issuer-")
            .tempdir()
            .expect("create a temporary directory");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the issuer");
        let port = listener.local_addr().expect("issuer address").port();
        let id = "EXAMPLED539D4633E53DE1B71EXAMPLE";
        let url = format!("http://127.0.0.1:{port}/id/{id}");
        let key = dir.path().join("sa.key");
        let key_arg = key.display().to_string();
        podiam(&["keys", "generate", "--alg", "RS256", "--out", &key_arg]);
        let root = dir.path().join("www");
        let out = root.join("id").join(id);
        std::fs::create_dir_all(&out).expect("create the issuer's document root");
        podiam(&[
            "token",
            "discovery",
            "--key",
            &key_arg,
            "--issuer",
            &url,
            "--out-dir",
            &out.display().to_string(),
        ]);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &root);
            }
        });
        Self {
            url,
            key,
            jwks: out.join("openid/v1/jwks"),
            _dir: dir,
        }
    }

    /// The issuer URL (the tokens' `iss`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The signing key (PKCS#8 PEM), for minting with another `--issuer`.
    pub fn key_file(&self) -> &Path {
        &self.key
    }

    /// The published JWKS document.
    pub fn jwks_file(&self) -> &Path {
        &self.jwks
    }

    /// The URL without its scheme, as IAM names the provider and the condition keys.
    pub fn host_path(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// A token for `namespace/service_account` with `audience`; `extra` are more
    /// `podiam token mint` flags (e.g. `--now`).
    pub fn mint(
        &self,
        namespace: &str,
        service_account: &str,
        audience: &str,
        extra: &[&str],
    ) -> String {
        let key = self.key.display().to_string();
        let mut args = vec![
            "token",
            "mint",
            "--key",
            &key,
            "--issuer",
            &self.url,
            "--namespace",
            namespace,
            "--service-account",
            service_account,
            "--audience",
            audience,
        ];
        args.extend_from_slice(extra);
        podiam(&args)
    }
}

/// Answers one request with a file under `root` (no `..`, GET only).
fn serve(stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let file = (method == "GET" && !path.contains(".."))
        .then(|| root.join(path.trim_start_matches('/')))
        .and_then(|p| std::fs::read(p).ok());
    let mut stream = stream;
    match file {
        Some(body) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)
        }
        None => stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    }
}
