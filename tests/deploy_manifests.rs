//! The Kubernetes manifests and the Dockerfile parse and agree with each other and with the server:
//! the probe paths they name really answer 200 on a running wick-serve.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;

use yaml_rust2::{Yaml, YamlLoader};

fn deploy(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name)
}

fn load(name: &str) -> Yaml {
    let text = std::fs::read_to_string(deploy(name)).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(docs.len(), 1, "{name}: one document");
    docs.remove(0)
}

#[test]
fn manifests_reference_the_right_ports_paths_and_names() {
    let deployment = load("k8s/deployment.yaml");
    let service = load("k8s/service.yaml");
    let hpa = load("k8s/hpa.yaml");
    let secret = load("k8s/secret.yaml");
    let config = load("k8s/configmap.yaml");
    assert_eq!(deployment["kind"].as_str(), Some("Deployment"));
    let name = deployment["metadata"]["name"].as_str().unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["ports"][0]["containerPort"].as_i64(), Some(8080));
    let env: Vec<(&str, &str)> = container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["name"].as_str()?, e["value"].as_str()?)))
        .collect();
    assert!(
        env.contains(&("WICK_SERVE_LISTEN", "0.0.0.0:8080")),
        "{env:?}"
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/v2/health/live")
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/v2/health/ready")
    );
    assert!(!container["resources"]["requests"]["cpu"].is_badvalue());
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"].as_i64(),
        Some(8080)
    );
    assert_eq!(
        service["spec"]["selector"]["app"],
        deployment["spec"]["template"]["metadata"]["labels"]["app"]
    );
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"].as_str(), Some(name));
    assert_eq!(secret["kind"].as_str(), Some("Secret"));
    assert!(secret["stringData"]["tokens.json"].as_str().is_some());
    let store = config["data"]["WICK_SERVE_STORE"].as_str().unwrap();
    assert!(
        store.starts_with("s3://"),
        "replicas share an S3 store: {store}"
    );
    let mounts = container["volumeMounts"].as_vec().unwrap();
    let tokens_file = env
        .iter()
        .find(|(k, _)| *k == "WICK_SERVE_TOKENS_FILE")
        .map(|(_, v)| *v)
        .unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| tokens_file.starts_with(m["mountPath"].as_str().unwrap())),
        "tokens file is on a mounted volume"
    );

    let dockerfile = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("EXPOSE 8080") && dockerfile.contains("WICK_SERVE_LISTEN=0.0.0.0:8080")
    );
    assert!(dockerfile.contains("-p wick-serve"));
}

#[tokio::test]
async fn probe_paths_answer_on_a_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = wick_serve::ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: dir.path().join("store").to_string_lossy().to_string(),
        data_dir: dir.path().join("data"),
        ..wick_serve::ServeConfig::default()
    };
    let server = tokio::task::spawn_blocking(move || wick_serve::RunningServer::start(config))
        .await
        .unwrap()
        .unwrap();
    let addr = server.addr;
    let container = &load("k8s/deployment.yaml")["spec"]["template"]["spec"]["containers"][0];
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap();
        let status = reqwest::get(format!("http://{addr}{path}"))
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200, "{probe} {path}");
    }
}
