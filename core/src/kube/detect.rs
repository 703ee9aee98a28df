//! Error detection for a service's Kubernetes objects, like the error
//! detection of Backstage's Kubernetes plugin: what is wrong, on which object,
//! and what usually fixes it.
//!
//! Everything here reads the objects' own status as the API server returned
//! it; nothing is fetched and the clock is passed in, so the same objects and
//! the same `now` always give the same problems.

use std::cmp::Reverse;
use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodStatus, Probe,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use paved_shared::kube::{Problem, Severity};

/// Objects read for one service in one namespace.
pub struct Observed<'a> {
    pub pods: &'a [Pod],
    pub deployments: &'a [Deployment],
    pub statefulsets: &'a [StatefulSet],
    pub daemonsets: &'a [DaemonSet],
    pub hpas: &'a [HorizontalPodAutoscaler],
    /// Quote what the cluster reports in free text (waiting and termination
    /// messages, which may hold a log's tail, and exec probe commands): for
    /// the owning team only. Without it, problems say what and where, not that text.
    pub details: bool,
}

/// Every problem found, most severe first, pods with the same problem on the same
/// owner (workload) grouped into one Problem with `count` (object = the first pod, message from it).
///
/// StatefulSets and DaemonSets with fewer ready pods than desired are not a
/// problem by themselves (a rollout looks the same); their pods' problems are.
pub fn detect(observed: &Observed<'_>, now: Timestamp) -> Vec<Problem> {
    let mut found = Found::default();
    for pod in observed.pods {
        pod_problems(pod, now, observed.details, &mut found);
    }
    for deployment in observed.deployments {
        deployment_problems(deployment, &mut found);
    }
    for hpa in observed.hpas {
        hpa_problems(hpa, &mut found);
    }
    let mut problems = found.problems;
    // Stable: within one severity, problems stay in the order they were found.
    problems.sort_by_key(|problem| Reverse(problem.severity));
    problems
}

/// The minimum time a running container may be unready before it is a problem.
const MIN_READINESS_BUDGET_SECONDS: i64 = 60;
/// Kubernetes' defaults for a probe's `periodSeconds` and `failureThreshold`.
const DEFAULT_PROBE_PERIOD_SECONDS: i64 = 10;
const DEFAULT_PROBE_FAILURE_THRESHOLD: i64 = 3;
/// Longest piece of a termination message quoted in a problem.
const MAX_QUOTED_CHARS: usize = 300;

const CRASH_LOOP: &str = "CrashLoopBackOff";
const IMAGE_PULL: &str = "ImagePullBackOff";
const INVALID_IMAGE: &str = "InvalidImageName";
const CONFIG_ERROR: &str = "CreateContainerConfigError";
const OOM_KILLED: &str = "OOMKilled";
const READINESS: &str = "ReadinessFailing";
const DEPLOYMENT_CONDITION: &str = "DeploymentCondition";
const HPA_AT_MAX: &str = "HpaAtMaxReplicas";

/// Problems in the order found, pods' problems grouped by workload.
#[derive(Default)]
struct Found {
    problems: Vec<Problem>,
    /// (code, owner, container) of a pod problem → its index in `problems`.
    groups: HashMap<(String, String, String), usize>,
}

impl Found {
    /// Adds a pod container's problem, or counts it on the same problem
    /// already found for another pod of the same owner.
    fn pod(&mut self, owner: &str, container: &str, problem: Problem) {
        let key = (problem.code.clone(), owner.to_owned(), container.to_owned());
        if let Some(existing) = self
            .groups
            .get(&key)
            .and_then(|&index| self.problems.get_mut(index))
        {
            existing.count += 1;
            return;
        }
        self.groups.insert(key, self.problems.len());
        self.problems.push(problem);
    }

    /// Adds a problem of a workload or autoscaler (never grouped).
    fn other(&mut self, problem: Problem) {
        self.problems.push(problem);
    }
}

/// A problem seen once.
fn problem(
    code: &str,
    severity: Severity,
    object: String,
    message: String,
    suggestion: &str,
) -> Problem {
    Problem {
        code: code.to_owned(),
        severity,
        object,
        message,
        suggestion: suggestion.to_owned(),
        count: 1,
    }
}

/// One container of a pod as detectors see it: its status and its spec.
struct ContainerView<'a> {
    status: &'a ContainerStatus,
    spec: Option<&'a Container>,
    /// An init container (it runs to completion unless it is a sidecar).
    init: bool,
    /// Quote the cluster's free text (see [`Observed::details`]).
    details: bool,
}

impl ContainerView<'_> {
    /// The image the container runs or tries to pull.
    fn image(&self) -> &str {
        match self.spec.and_then(|spec| spec.image.as_deref()) {
            Some(image) if !image.is_empty() => image,
            _ => &self.status.image,
        }
    }

    /// A sidecar: an init container that keeps running (`restartPolicy: Always`).
    fn sidecar(&self) -> bool {
        self.init && self.spec.and_then(|spec| spec.restart_policy.as_deref()) == Some("Always")
    }

    /// The memory limit from the spec, or from the status's resources.
    fn memory_limit(&self) -> Option<&str> {
        let from_spec = self
            .spec
            .and_then(|spec| spec.resources.as_ref())
            .and_then(|resources| resources.limits.as_ref())
            .and_then(|limits| limits.get("memory"));
        let from_status = || {
            self.status
                .resources
                .as_ref()
                .and_then(|resources| resources.limits.as_ref())
                .and_then(|limits| limits.get("memory"))
        };
        from_spec
            .or_else(from_status)
            .map(|quantity| quantity.0.as_str())
    }
}

/// The problems of every container of one pod.
fn pod_problems(pod: &Pod, now: Timestamp, details: bool, found: &mut Found) {
    let Some(status) = pod.status.as_ref() else {
        return;
    };
    let name = pod.metadata.name.as_deref().unwrap_or("unnamed");
    let owner = pod_owner(pod, name);
    let spec = pod.spec.as_ref();
    let init_specs = spec.and_then(|spec| spec.init_containers.as_deref());
    let specs = spec.map(|spec| spec.containers.as_slice());

    let init = status
        .init_container_statuses
        .iter()
        .flatten()
        .map(|status| ContainerView {
            status,
            spec: find_container(init_specs, &status.name),
            init: true,
            details,
        });
    let regular = status
        .container_statuses
        .iter()
        .flatten()
        .map(|status| ContainerView {
            status,
            spec: find_container(specs, &status.name),
            init: false,
            details,
        });

    let running = status.phase.as_deref() == Some("Running");
    // A pod being deleted turns unready on purpose.
    let deleting = pod.metadata.deletion_timestamp.is_some();

    for container in init.chain(regular) {
        let object = format!("Pod/{name} ({})", container.status.name);
        let mut add = |code: &str, severity: Severity, message: String, suggestion: &str| {
            found.pod(
                &owner,
                &container.status.name,
                problem(code, severity, object.clone(), message, suggestion),
            );
        };
        if let Some((code, message, suggestion)) = waiting_problem(&container) {
            add(code, Severity::Error, message, suggestion);
        }
        if let Some(message) = oom_killed(&container) {
            add(OOM_KILLED, Severity::Error, message, OOM_SUGGESTION);
        }
        if running && !deleting && (!container.init || container.sidecar()) {
            if let Some(message) = readiness_failing(&container, status, now) {
                add(READINESS, Severity::Warning, message, READINESS_SUGGESTION);
            }
        }
    }
}

/// The workload a pod belongs to (its controller, else its first owner), or
/// the pod itself when nothing owns it.
fn pod_owner(pod: &Pod, name: &str) -> String {
    let owners = pod.metadata.owner_references.as_deref().unwrap_or_default();
    owners
        .iter()
        .find(|owner| owner.controller == Some(true))
        .or_else(|| owners.first())
        .map(|owner| format!("{}/{}", owner.kind, owner.name))
        .unwrap_or_else(|| format!("Pod/{name}"))
}

/// The container of `containers` called `name`.
fn find_container<'a>(containers: Option<&'a [Container]>, name: &str) -> Option<&'a Container> {
    containers?.iter().find(|container| container.name == name)
}

const CRASH_LOOP_SUGGESTION: &str =
    "Read the previous container's logs (`previous`) to see why it \
exited, then check its command and arguments, its configuration (environment, mounted Secrets and \
ConfigMaps) and whether a liveness or startup probe kills it before it is up.";
const IMAGE_PULL_SUGGESTION: &str = "Check that the image name and tag exist in the registry (the \
tag may not have been pushed yet) and that the pod's imagePullSecrets (or its service account's) \
give access to that registry.";
const INVALID_IMAGE_SUGGESTION: &str = "Fix the image reference in the workload: \
`registry/repository:tag` or `registry/repository@sha256:<digest>`, with a lower-case repository \
and a non-empty tag (an empty one is often an unset template variable).";
const CONFIG_ERROR_SUGGESTION: &str = "Usually a Secret or ConfigMap (or a key in it) that the \
container's env, envFrom or volumes refer to does not exist in the namespace: create it, correct \
the name, or mark the reference optional if it may be absent.";
const OOM_SUGGESTION: &str = "Raise the container's memory limit (resources.limits.memory) if the \
usage is expected, or find the leak: look at its memory use before the kill and at the previous \
container's logs.";
const READINESS_SUGGESTION: &str = "Check that the readiness probe's path and port match what the \
app serves, read the container's logs for startup errors or dependencies it waits for, and look at \
the pod's events for the probe's failures; raise initialDelaySeconds or failureThreshold (or add a \
startupProbe) if it is only slow to start.";

/// A container waiting for a reason that needs someone to act.
fn waiting_problem(container: &ContainerView<'_>) -> Option<(&'static str, String, &'static str)> {
    let waiting = container.status.state.as_ref()?.waiting.as_ref()?;
    let name = &container.status.name;
    let detail = waiting
        .message
        .as_deref()
        .filter(|_| container.details)
        .map(|message| format!(": {message}"))
        .unwrap_or_default();
    match waiting.reason.as_deref()? {
        "CrashLoopBackOff" => {
            let restarts = container.status.restart_count;
            let mut message = format!(
                "container {name} is crash-looping: restarted {restarts} {}",
                plural(restarts, "time", "times")
            );
            if let Some(last) = last_terminated(container.status) {
                message.push_str(&format!(
                    ", last run ended with {}",
                    termination(last, container.details)
                ));
            }
            Some((CRASH_LOOP, message, CRASH_LOOP_SUGGESTION))
        }
        reason @ ("ImagePullBackOff" | "ErrImagePull") => Some((
            IMAGE_PULL,
            format!(
                "container {name} cannot pull image {} ({reason}){detail}",
                container.image()
            ),
            IMAGE_PULL_SUGGESTION,
        )),
        "InvalidImageName" => Some((
            INVALID_IMAGE,
            format!(
                "container {name} has an invalid image name {:?}{detail}",
                container.image()
            ),
            INVALID_IMAGE_SUGGESTION,
        )),
        "CreateContainerConfigError" => Some((
            CONFIG_ERROR,
            format!("container {name} cannot be created{detail}"),
            CONFIG_ERROR_SUGGESTION,
        )),
        _ => None,
    }
}

/// How the container's previous run ended, if it ran before.
fn last_terminated(status: &ContainerStatus) -> Option<&ContainerStateTerminated> {
    status.last_state.as_ref()?.terminated.as_ref()
}

/// `Error (exit code 1): <termination message>`.
fn termination(terminated: &ContainerStateTerminated, details: bool) -> String {
    let reason = terminated.reason.as_deref().unwrap_or("termination");
    let mut text = format!("{reason} (exit code {})", terminated.exit_code);
    if let Some(message) = terminated
        .message
        .as_deref()
        .filter(|_| details)
        .map(str::trim)
        .filter(|message| !message.is_empty())
    {
        let quoted: String = message.chars().take(MAX_QUOTED_CHARS).collect();
        text.push_str(": ");
        text.push_str(&quoted);
        if quoted.len() < message.len() {
            text.push('…');
        }
    }
    text
}

/// The container was killed for using more memory than allowed (its last
/// run, or the current one if it has just ended).
fn oom_killed(container: &ContainerView<'_>) -> Option<String> {
    let status = container.status;
    let terminated = oom_terminated(status.state.as_ref())
        .or_else(|| oom_terminated(status.last_state.as_ref()))?;
    let limit = container
        .memory_limit()
        .map(|limit| format!("memory limit {limit}"))
        .unwrap_or_else(|| "no memory limit set".to_owned());
    let mut message = format!(
        "container {} was killed for running out of memory (exit code {}, {limit})",
        status.name, terminated.exit_code
    );
    if let Some(finished) = terminated.finished_at.as_ref() {
        message.push_str(&format!(" at {}", finished.0));
    }
    let restarts = status.restart_count;
    message.push_str(&format!(
        "; restarted {restarts} {}",
        plural(restarts, "time", "times")
    ));
    Some(message)
}

/// The state's termination, if the container was OOM-killed.
fn oom_terminated(state: Option<&ContainerState>) -> Option<&ContainerStateTerminated> {
    state?
        .terminated
        .as_ref()
        .filter(|terminated| terminated.reason.as_deref() == Some("OOMKilled"))
}

/// A running container that has not been ready for longer than its probes
/// allow.
fn readiness_failing(
    container: &ContainerView<'_>,
    pod_status: &PodStatus,
    now: Timestamp,
) -> Option<String> {
    let status = container.status;
    if status.ready {
        return None;
    }
    let running = status.state.as_ref()?.running.as_ref()?;
    let unready_condition = pod_status
        .conditions
        .iter()
        .flatten()
        .find(|condition| condition.type_ == "Ready" && condition.status != "True");
    let since = unready_condition
        .and_then(|condition| condition.last_transition_time.as_ref())
        .or(running.started_at.as_ref())?
        .0;
    let unready = now.as_second() - since.as_second();
    let budget = readiness_budget(container.spec);
    if unready <= budget {
        return None;
    }
    let mut message = format!(
        "container {} has not been ready for {} (allowed {})",
        status.name,
        human_duration(unready),
        human_duration(budget)
    );
    if let Some(probe) = container
        .spec
        .and_then(|spec| spec.readiness_probe.as_ref())
        .and_then(|probe| describe_probe(probe, container.details))
    {
        message.push_str(&format!("; readiness probe {probe}"));
    }
    Some(message)
}

/// How long a container may take to become ready: its readiness probe's
/// initial delay plus the failures it tolerates (and its startup probe's,
/// which runs first), at least [`MIN_READINESS_BUDGET_SECONDS`].
fn readiness_budget(spec: Option<&Container>) -> i64 {
    let probe_budget = |probe: Option<&Probe>| {
        probe.map_or(0, |probe| {
            let delay = i64::from(probe.initial_delay_seconds.unwrap_or(0).max(0));
            let period = probe
                .period_seconds
                .filter(|&period| period > 0)
                .map_or(DEFAULT_PROBE_PERIOD_SECONDS, i64::from);
            let failures = probe
                .failure_threshold
                .filter(|&threshold| threshold > 0)
                .map_or(DEFAULT_PROBE_FAILURE_THRESHOLD, i64::from);
            delay + period * failures
        })
    };
    let readiness = probe_budget(spec.and_then(|spec| spec.readiness_probe.as_ref()));
    let startup = probe_budget(spec.and_then(|spec| spec.startup_probe.as_ref()));
    (readiness + startup).max(MIN_READINESS_BUDGET_SECONDS)
}

/// `GET /ready on port http`, `TCP port 5432`, …
fn describe_probe(probe: &Probe, details: bool) -> Option<String> {
    let port = |port: &IntOrString| match port {
        IntOrString::Int(number) => number.to_string(),
        IntOrString::String(name) => name.clone(),
    };
    if let Some(http) = probe.http_get.as_ref() {
        let path = http.path.as_deref().unwrap_or("/");
        return Some(format!("GET {path} on port {}", port(&http.port)));
    }
    if let Some(tcp) = probe.tcp_socket.as_ref() {
        return Some(format!("TCP port {}", port(&tcp.port)));
    }
    if let Some(grpc) = probe.grpc.as_ref() {
        return Some(format!("gRPC port {}", grpc.port));
    }
    let command = probe.exec.as_ref()?.command.as_deref()?;
    Some(if details {
        format!("exec `{}`", command.join(" "))
    } else {
        "an exec command".to_owned()
    })
}

const AVAILABLE_SUGGESTION: &str = "Fewer replicas are available than required: look at the \
problems of its pods (crash loops, image pulls, readiness) and at its events.";
const PROGRESS_SUGGESTION: &str = "The rollout stopped making progress: fix the new pods' \
problems (see its pods and events) and deploy again, or roll back to the previous revision.";
const REPLICA_FAILURE_SUGGESTION: &str = "Its pods could not be created: usually a ResourceQuota \
or LimitRange, a PodSecurity or admission-webhook refusal, or a missing service account; the \
message says which.";

/// A Deployment condition that says it is not available, not progressing, or
/// cannot create pods.
fn deployment_problems(deployment: &Deployment, found: &mut Found) {
    let name = deployment.metadata.name.as_deref().unwrap_or("unnamed");
    let conditions = deployment
        .status
        .as_ref()
        .and_then(|status| status.conditions.as_deref())
        .unwrap_or_default();
    for condition in conditions {
        let reason = condition.reason.as_deref();
        let suggestion = match (condition.type_.as_str(), condition.status.as_str()) {
            ("Available", "False") => AVAILABLE_SUGGESTION,
            ("Progressing", "False") => PROGRESS_SUGGESTION,
            ("Progressing", _) if reason == Some("ProgressDeadlineExceeded") => PROGRESS_SUGGESTION,
            ("ReplicaFailure", "True") => REPLICA_FAILURE_SUGGESTION,
            _ => continue,
        };
        let message = match (reason, condition.message.as_deref()) {
            (Some(reason), Some(text)) => format!("{reason}: {text}"),
            (Some(only), None) | (None, Some(only)) => only.to_owned(),
            (None, None) => format!("{} is {}", condition.type_, condition.status),
        };
        found.other(problem(
            DEPLOYMENT_CONDITION,
            Severity::Error,
            format!("Deployment/{name}"),
            message,
            suggestion,
        ));
    }
}

const HPA_SUGGESTION: &str = "Raise maxReplicas if the load is real (and the cluster has room), \
or check the load and the pods' resource requests: utilization targets are relative to the \
requests, so requests set too low scale out early.";

/// An autoscaler that has scaled to its maximum and can add no more pods.
fn hpa_problems(hpa: &HorizontalPodAutoscaler, found: &mut Found) {
    let Some(spec) = hpa.spec.as_ref() else {
        return;
    };
    let Some(status) = hpa.status.as_ref() else {
        return;
    };
    let max = spec.max_replicas;
    let Some(current) = status.current_replicas else {
        return;
    };
    if max <= 0 || current < max {
        return;
    }
    let name = hpa.metadata.name.as_deref().unwrap_or("unnamed");
    let target = &spec.scale_target_ref;
    let mut message = format!(
        "{}/{} runs {current} replicas, the autoscaler's maximum of {max} (desired {})",
        target.kind, target.name, status.desired_replicas
    );
    if let Some(limited) = status
        .conditions
        .iter()
        .flatten()
        .find(|condition| condition.type_ == "ScalingLimited" && condition.status == "True")
        .and_then(|condition| condition.message.as_deref())
    {
        message.push_str(&format!("; {limited}"));
    }
    found.other(problem(
        HPA_AT_MAX,
        Severity::Warning,
        format!("HorizontalPodAutoscaler/{name}"),
        message,
        HPA_SUGGESTION,
    ));
}

/// `one` for 1, else `many`.
fn plural<'a>(count: i32, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 {
        one
    } else {
        many
    }
}

/// `45s`, `10m`, `2m 5s`, `1h 30m`, `3d 4h`: the two largest units.
fn human_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60,
    );
    let pair = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{big_unit}")
        } else {
            format!("{big}{big_unit} {small}{small_unit}")
        }
    };
    if days > 0 {
        pair(days, "d", hours, "h")
    } else if hours > 0 {
        pair(hours, "h", minutes, "m")
    } else if minutes > 0 {
        pair(minutes, "m", secs, "s")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::List;

    /// The fixtures' "now": 10 minutes after the failing pod turned unready.
    fn now() -> Timestamp {
        "2025-06-12T10:30:00Z".parse().unwrap()
    }

    fn pod(json: &str) -> Pod {
        serde_json::from_str::<Pod>(json).unwrap()
    }

    fn crash_looping_pods() -> Vec<Pod> {
        serde_json::from_str::<List<Pod>>(include_str!("fixtures/pods-crashloop.json"))
            .unwrap()
            .items
    }

    fn healthy_pod() -> Pod {
        pod(include_str!("fixtures/pod-healthy.json"))
    }

    fn readiness_failing_pod() -> Pod {
        pod(include_str!("fixtures/pod-readiness-failing.json"))
    }

    fn deployment(json: &str) -> Deployment {
        serde_json::from_str::<Deployment>(json).unwrap()
    }

    fn hpa(json: &str) -> HorizontalPodAutoscaler {
        serde_json::from_str::<HorizontalPodAutoscaler>(json).unwrap()
    }

    fn pods_only(pods: &[Pod]) -> Vec<Problem> {
        detect(
            &Observed {
                pods,
                deployments: &[],
                statefulsets: &[],
                daemonsets: &[],
                hpas: &[],
                details: true,
            },
            now(),
        )
    }

    fn codes(problems: &[Problem]) -> Vec<&str> {
        problems
            .iter()
            .map(|problem| problem.code.as_str())
            .collect()
    }

    #[test]
    fn a_crash_looping_container_is_reported_with_restarts_and_last_exit() {
        let pods = crash_looping_pods();
        let problems = pods_only(&pods[..1]);
        assert_eq!(codes(&problems), ["CrashLoopBackOff"]);
        let problem = &problems[0];
        assert_eq!(problem.severity, Severity::Error);
        assert_eq!(problem.object, "Pod/checkout-7d9c8b6f5d-x2k9p (app)");
        assert_eq!(problem.count, 1);
        assert!(
            problem.message.contains("container app"),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("restarted 7 times"),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("Error (exit code 1)"),
            "{}",
            problem.message
        );
        assert!(problem.suggestion.contains("`previous`"));
    }

    #[test]
    fn three_crash_looping_pods_of_one_replicaset_are_one_problem() {
        let pods = crash_looping_pods();
        assert_eq!(pods.len(), 3);
        let problems = pods_only(&pods);
        assert_eq!(codes(&problems), ["CrashLoopBackOff"]);
        assert_eq!(problems[0].count, 3);
        // The first pod names the group and gives the message.
        assert_eq!(problems[0].object, "Pod/checkout-7d9c8b6f5d-x2k9p (app)");
        assert!(problems[0].message.contains("restarted 7 times"));
    }

    #[test]
    fn pods_of_other_owners_or_other_containers_are_not_grouped() {
        let mut pods = crash_looping_pods();
        // Another ReplicaSet (a new rollout) with the same crash.
        pods[1].metadata.owner_references.as_mut().unwrap()[0].name =
            "checkout-6b5c4d3e2f".to_owned();
        // A pod nothing owns.
        pods[2].metadata.owner_references = None;
        let problems = pods_only(&pods);
        assert_eq!(problems.len(), 3);
        assert!(problems.iter().all(|problem| problem.count == 1));

        let mut pods = crash_looping_pods();
        let status = pods[2].status.as_mut().unwrap();
        status.container_statuses.as_mut().unwrap()[0].name = "worker".to_owned();
        let problems = pods_only(&pods);
        let counts: Vec<_> = problems
            .iter()
            .map(|p| (p.object.as_str(), p.count))
            .collect();
        assert_eq!(
            counts,
            [
                ("Pod/checkout-7d9c8b6f5d-x2k9p (app)", 2),
                ("Pod/checkout-7d9c8b6f5d-q7rlc (worker)", 1)
            ]
        );
    }

    #[test]
    fn a_crash_looping_init_container_is_reported() {
        let mut pod = crash_looping_pods().remove(0);
        let status = pod.status.as_mut().unwrap();
        let mut init = status.container_statuses.take().unwrap();
        init[0].name = "migrate".to_owned();
        status.init_container_statuses = Some(init);
        status.phase = Some("Pending".to_owned());
        let problems = pods_only(&[pod]);
        assert_eq!(codes(&problems), ["CrashLoopBackOff"]);
        assert_eq!(
            problems[0].object,
            "Pod/checkout-7d9c8b6f5d-x2k9p (migrate)"
        );
    }

    #[test]
    fn err_image_pull_is_an_image_pull_problem_with_the_image_and_the_reason() {
        let problems = pods_only(&[pod(include_str!("fixtures/pod-errimagepull.json"))]);
        assert_eq!(codes(&problems), ["ImagePullBackOff"]);
        let problem = &problems[0];
        assert_eq!(problem.severity, Severity::Error);
        assert_eq!(problem.object, "Pod/checkout-5b8f7c9d44-tn6vd (app)");
        assert!(
            problem.message.contains("ghcr.io/acme/checkout:1.4.3"),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("ErrImagePull"),
            "{}",
            problem.message
        );
        assert!(problem.message.contains("not found"), "{}", problem.message);
        assert!(problem.suggestion.contains("imagePullSecrets"));
    }

    #[test]
    fn image_pull_back_off_carries_the_registrys_answer() {
        let problems = pods_only(&[pod(include_str!("fixtures/pod-imagepullbackoff.json"))]);
        assert_eq!(codes(&problems), ["ImagePullBackOff"]);
        let message = &problems[0].message;
        assert!(
            message.contains("registry.acme.internal/payments/checkout:1.4.2"),
            "{message}"
        );
        assert!(message.contains("(ImagePullBackOff)"), "{message}");
        assert!(message.contains("no basic auth credentials"), "{message}");
    }

    #[test]
    fn an_invalid_image_name_is_reported() {
        let problems = pods_only(&[pod(include_str!("fixtures/pod-invalid-image-name.json"))]);
        assert_eq!(codes(&problems), ["InvalidImageName"]);
        assert_eq!(problems[0].severity, Severity::Error);
        assert_eq!(problems[0].object, "Pod/checkout-8f6e5d4c3b-j5xgh (app)");
        let message = &problems[0].message;
        assert!(message.contains("\"ghcr.io/acme/Checkout:\""), "{message}");
        assert!(message.contains("invalid reference format"), "{message}");
    }

    #[test]
    fn a_missing_secret_is_a_create_container_config_error() {
        let problems = pods_only(&[pod(include_str!(
            "fixtures/pod-create-container-config-error.json"
        ))]);
        assert_eq!(codes(&problems), ["CreateContainerConfigError"]);
        assert_eq!(problems[0].severity, Severity::Error);
        assert_eq!(problems[0].object, "Pod/checkout-4a3b2c1d0e-pk2ls (app)");
        assert!(problems[0].message.contains("secret \"x\" not found"));
        assert!(problems[0].suggestion.contains("Secret or ConfigMap"));
    }

    #[test]
    fn without_details_the_clusters_free_text_is_not_quoted() {
        let pods = [pod(include_str!(
            "fixtures/pod-create-container-config-error.json"
        ))];
        let problems = detect(
            &Observed {
                pods: &pods,
                deployments: &[],
                statefulsets: &[],
                daemonsets: &[],
                hpas: &[],
                details: false,
            },
            now(),
        );
        assert_eq!(codes(&problems), ["CreateContainerConfigError"]);
        assert!(
            !problems[0].message.contains("secret \"x\""),
            "{}",
            problems[0].message
        );
        assert!(problems[0].suggestion.contains("Secret or ConfigMap"));
    }

    #[test]
    fn an_oom_killed_container_running_again_is_reported_with_its_limit() {
        let problems = pods_only(&[pod(include_str!("fixtures/pod-oomkilled.json"))]);
        assert_eq!(codes(&problems), ["OOMKilled"]);
        let problem = &problems[0];
        assert_eq!(problem.severity, Severity::Error);
        assert_eq!(problem.object, "Pod/checkout-7d9c8b6f5d-v8nrf (app)");
        assert!(
            problem.message.contains("memory limit 256Mi"),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("exit code 137"),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("2025-06-12T10:02:11Z"),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("restarted 1 time"),
            "{}",
            problem.message
        );
        assert!(problem.suggestion.contains("memory limit"));
    }

    #[test]
    fn an_oom_kill_without_a_limit_says_so() {
        let mut pod = pod(include_str!("fixtures/pod-oomkilled.json"));
        pod.spec.as_mut().unwrap().containers[0].resources = None;
        pod.status
            .as_mut()
            .unwrap()
            .container_statuses
            .as_mut()
            .unwrap()[0]
            .resources = None;
        let problems = pods_only(&[pod]);
        assert!(problems[0].message.contains("no memory limit set"));
    }

    #[test]
    fn a_container_unready_for_ten_minutes_is_a_readiness_warning() {
        let problems = pods_only(&[readiness_failing_pod()]);
        assert_eq!(codes(&problems), ["ReadinessFailing"]);
        let problem = &problems[0];
        assert_eq!(problem.severity, Severity::Warning);
        assert_eq!(problem.object, "Pod/checkout-7d9c8b6f5d-r4wcx (app)");
        assert!(problem.message.contains("for 10m"), "{}", problem.message);
        assert!(
            problem.message.contains("allowed 1m"),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("GET /ready on port http"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn a_container_unready_for_20_seconds_is_not_a_problem_yet() {
        let problems = pods_only(&[pod(include_str!("fixtures/pod-readiness-recent.json"))]);
        assert_eq!(problems, []);
    }

    /// Sets the failing pod's readiness probe timing.
    fn set_probe(pod: &mut Pod, delay: i32, period: i32, failure_threshold: i32) {
        let probe = pod.spec.as_mut().unwrap().containers[0]
            .readiness_probe
            .as_mut()
            .unwrap();
        probe.initial_delay_seconds = Some(delay);
        probe.period_seconds = Some(period);
        probe.failure_threshold = Some(failure_threshold);
    }

    #[test]
    fn a_slow_probe_gets_its_whole_budget() {
        let mut pod = readiness_failing_pod();
        // 600 s initial delay + 3 × 10 s: ten minutes is still within it.
        set_probe(&mut pod, 600, 10, 3);
        assert_eq!(pods_only(std::slice::from_ref(&pod)), []);
        // 30 × 20 s is ten minutes exactly, still within it…
        set_probe(&mut pod, 0, 20, 30);
        assert_eq!(pods_only(std::slice::from_ref(&pod)), []);
        // …and 29 × 20 s is not.
        set_probe(&mut pod, 0, 20, 29);
        let problems = pods_only(&[pod]);
        assert_eq!(codes(&problems), ["ReadinessFailing"]);
        assert!(
            problems[0].message.contains("allowed 9m 40s"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn a_startup_probe_adds_to_the_budget() {
        let mut pod = readiness_failing_pod();
        let startup = Probe {
            period_seconds: Some(10),
            failure_threshold: Some(60),
            ..Default::default()
        };
        pod.spec.as_mut().unwrap().containers[0].startup_probe = Some(startup);
        assert_eq!(pods_only(&[pod]), []);
    }

    #[test]
    fn readiness_is_measured_from_the_container_start_without_a_ready_condition() {
        let mut pod = readiness_failing_pod();
        pod.status.as_mut().unwrap().conditions = None;
        let problems = pods_only(&[pod]);
        // Running since 09:12:40, so unready for 1h 17m 20s.
        assert_eq!(codes(&problems), ["ReadinessFailing"]);
        assert!(
            problems[0].message.contains("for 1h 17m"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn a_terminating_pod_is_not_a_readiness_problem() {
        let mut pod = readiness_failing_pod();
        pod.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2025-06-12T10:20:00Z".parse().unwrap(),
            ));
        assert_eq!(pods_only(&[pod]), []);
    }

    #[test]
    fn a_stalled_rollout_is_a_deployment_condition_problem() {
        let deployments = [deployment(include_str!(
            "fixtures/deployment-progress-deadline.json"
        ))];
        let problems = detect(
            &Observed {
                pods: &[],
                deployments: &deployments,
                statefulsets: &[],
                daemonsets: &[],
                hpas: &[],
                details: true,
            },
            now(),
        );
        assert_eq!(codes(&problems), ["DeploymentCondition"]);
        let problem = &problems[0];
        assert_eq!(problem.severity, Severity::Error);
        assert_eq!(problem.object, "Deployment/checkout");
        assert_eq!(
            problem.message,
            "ProgressDeadlineExceeded: ReplicaSet \"checkout-7d9c8b6f5d\" has timed out progressing."
        );
        assert!(problem.suggestion.contains("roll back"));
    }

    #[test]
    fn progressing_false_for_another_reason_is_a_problem_too() {
        let mut stalled = deployment(include_str!("fixtures/deployment-progress-deadline.json"));
        let conditions = stalled
            .status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap();
        conditions[1].reason = Some("ReplicaSetCreateError".to_owned());
        conditions[1].message =
            Some("Failed to create new replica set \"checkout-7d9c8b6f5d\"".to_owned());
        let problems = detect(
            &Observed {
                pods: &[],
                deployments: &[stalled],
                statefulsets: &[],
                daemonsets: &[],
                hpas: &[],
                details: true,
            },
            now(),
        );
        assert_eq!(codes(&problems), ["DeploymentCondition"]);
        assert!(problems[0]
            .message
            .starts_with("ReplicaSetCreateError: Failed to create"));
    }

    #[test]
    fn an_unavailable_deployment_that_cannot_create_pods_has_both_conditions() {
        let deployments = [deployment(include_str!(
            "fixtures/deployment-quota-exceeded.json"
        ))];
        let problems = detect(
            &Observed {
                pods: &[],
                deployments: &deployments,
                statefulsets: &[],
                daemonsets: &[],
                hpas: &[],
                details: true,
            },
            now(),
        );
        assert_eq!(
            codes(&problems),
            ["DeploymentCondition", "DeploymentCondition"]
        );
        assert!(problems
            .iter()
            .all(|problem| problem.object == "Deployment/ledger"));
        assert!(problems[0]
            .message
            .starts_with("MinimumReplicasUnavailable: "));
        assert!(problems[1].message.starts_with("FailedCreate: "));
        assert!(problems[1]
            .message
            .contains("exceeded quota: payments-quota"));
        assert!(problems[1].suggestion.contains("ResourceQuota"));
    }

    #[test]
    fn an_autoscaler_at_its_maximum_is_a_warning() {
        let hpas = [hpa(include_str!("fixtures/hpa-at-max.json"))];
        let problems = detect(
            &Observed {
                pods: &[],
                deployments: &[],
                statefulsets: &[],
                daemonsets: &[],
                hpas: &hpas,
                details: true,
            },
            now(),
        );
        assert_eq!(codes(&problems), ["HpaAtMaxReplicas"]);
        let problem = &problems[0];
        assert_eq!(problem.severity, Severity::Warning);
        assert_eq!(problem.object, "HorizontalPodAutoscaler/checkout");
        assert!(
            problem
                .message
                .contains("Deployment/checkout runs 10 replicas"),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("maximum of 10"),
            "{}",
            problem.message
        );
        assert!(problem
            .message
            .contains("more than the maximum replica count"));
        assert!(problem.suggestion.contains("maxReplicas"));
    }

    #[test]
    fn a_healthy_set_has_no_problems() {
        let pods = [
            healthy_pod(),
            pod(include_str!("fixtures/pod-readiness-recent.json")),
        ];
        let deployments = [deployment(include_str!("fixtures/deployment-healthy.json"))];
        // Two of three ready while it rolls: not a problem by itself.
        let statefulsets = [serde_json::from_str::<StatefulSet>(include_str!(
            "fixtures/statefulset-rolling.json"
        ))
        .unwrap()];
        let hpas = [hpa(include_str!("fixtures/hpa-healthy.json"))];
        let observed = Observed {
            pods: &pods,
            deployments: &deployments,
            statefulsets: &statefulsets,
            daemonsets: &[],
            hpas: &hpas,
            details: true,
        };
        assert_eq!(detect(&observed, now()), []);
        // The fixtures are read as written, so this can fail.
        assert_eq!(
            statefulsets[0].status.as_ref().unwrap().ready_replicas,
            Some(2)
        );
        assert_eq!(
            deployments[0]
                .status
                .as_ref()
                .unwrap()
                .conditions
                .as_ref()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn errors_come_before_warnings() {
        // Warnings first in the input.
        let pods = [
            readiness_failing_pod(),
            healthy_pod(),
            pod(include_str!("fixtures/pod-oomkilled.json")),
            pod(include_str!("fixtures/pod-errimagepull.json")),
        ];
        let deployments = [deployment(include_str!(
            "fixtures/deployment-progress-deadline.json"
        ))];
        let hpas = [hpa(include_str!("fixtures/hpa-at-max.json"))];
        let mut all_pods = pods.to_vec();
        all_pods.extend(crash_looping_pods());
        let problems = detect(
            &Observed {
                pods: &all_pods,
                deployments: &deployments,
                statefulsets: &[],
                daemonsets: &[],
                hpas: &hpas,
                details: true,
            },
            now(),
        );
        assert_eq!(
            codes(&problems),
            [
                "OOMKilled",
                "ImagePullBackOff",
                "CrashLoopBackOff",
                "DeploymentCondition",
                "ReadinessFailing",
                "HpaAtMaxReplicas",
            ]
        );
        let severities: Vec<_> = problems.iter().map(|problem| problem.severity).collect();
        assert_eq!(
            severities,
            [
                Severity::Error,
                Severity::Error,
                Severity::Error,
                Severity::Error,
                Severity::Warning,
                Severity::Warning,
            ]
        );
        assert_eq!(problems[2].count, 3);
    }

    #[test]
    fn objects_without_status_or_spec_are_no_problem() {
        let pods = [Pod::default()];
        let deployments = [Deployment::default()];
        let hpas = [HorizontalPodAutoscaler::default()];
        let problems = detect(
            &Observed {
                pods: &pods,
                deployments: &deployments,
                statefulsets: &[StatefulSet::default()],
                daemonsets: &[DaemonSet::default()],
                hpas: &hpas,
                details: true,
            },
            now(),
        );
        assert_eq!(problems, []);

        // A crash loop with almost nothing else known still reads.
        let pod = Pod {
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "app".to_owned(),
                    state: Some(ContainerState {
                        waiting: Some(k8s_openapi::api::core::v1::ContainerStateWaiting {
                            reason: Some("CrashLoopBackOff".to_owned()),
                            message: None,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let problems = pods_only(&[pod]);
        assert_eq!(codes(&problems), ["CrashLoopBackOff"]);
        assert_eq!(problems[0].object, "Pod/unnamed (app)");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_duration(20), "20s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(125), "2m 5s");
        assert_eq!(human_duration(4_640), "1h 17m");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3_600 + 59), "3d 4h");
        assert_eq!(human_duration(-5), "0s");
    }
}
