//! NPS surveys over the real router: PMs create, people answer once (and may
//! change it while open), results hide groups below the minimum size, and
//! the tables themselves never link an answer to a person.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::tokens::*;
use common::*;
use paved_core::auth::{PlatformRole, TeamRole};
use paved_core::budgets::ledger::ManualClock;
use serde_json::{json, Value};

/// A `survey_answers` row: id, owner_key, teams, persona, score, drivers, comment.
type AnswerRow = (
    String,
    Option<String>,
    String,
    String,
    i64,
    String,
    Option<String>,
);

/// 2026-03-02T00:00:00Z.
const T0: i64 = 1_772_409_600;

#[tokio::test]
async fn surveys_count_every_answer_once_and_show_no_group_below_the_minimum() {
    let clock = Arc::new(ManualClock::at(T0 * 1000));
    let app = test_app_with_clock(&[], clock.clone()).await;
    let pm = app
        .session_for("pat", &[], &[PlatformRole::PlatformPm])
        .await;
    let lead = app
        .session_for("lee", &[("payments", TeamRole::Lead)], &[])
        .await;
    let mut payments = Vec::new();
    for i in 0..6 {
        payments.push(
            app.session_for(&format!("pay{i}"), &[("payments", TeamRole::Member)], &[])
                .await,
        );
    }
    let mut search = Vec::new();
    for i in 0..5 {
        search.push(
            app.session_for(&format!("find{i}"), &[("search", TeamRole::Member)], &[])
                .await,
        );
    }
    let surveys = "/api/outcomes/v1/surveys";

    // Only PMs and admins create surveys; a developer is refused.
    let input = json!({"title": "Platform pulse, March", "drivers": ["Ease of delivery", "Documentation"],
                       "closes_at": "2026-03-16T00:00:00Z",
                       "themes": [{"name": "Build speed", "keywords": ["slow", "build"]}]});
    let (code, _) = app
        .with_session(&payments[0])
        .post(surveys, input.clone())
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, survey) = app.with_session(&pm).post(surveys, input).await;
    assert_eq!(code, StatusCode::CREATED, "{survey}");
    assert_eq!(survey["state"], "open");
    assert_eq!(survey["min_group"], 5);
    assert_eq!(
        survey["question"],
        "How likely are you to recommend the platform to a colleague?"
    );
    let id = survey["id"].as_str().unwrap().to_owned();
    let answer = format!("{surveys}/{id}/answer");
    let results = format!("{surveys}/{id}/results");
    let (code, refused) = app
        .with_session(&pm)
        .post(surveys, json!({"title": "t", "min_group": 2}))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");

    // A service token is not a person.
    let (code, _) = app.as_(ADMIN).put(&answer, json!({"score": 10})).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (_, open) = app
        .with_session(&payments[0])
        .get(&format!("{surveys}/open"))
        .await;
    assert_eq!(open[0]["survey"]["id"], id.as_str(), "{open}");
    assert_eq!(open[0]["answered"], false);

    // payments: 10 10 9 8 6 3; search (4 of its 5): 10 9 9 0.
    for (who, score) in payments.iter().zip([10, 10, 9, 8, 6, 3]) {
        let (code, body) = app
            .with_session(who)
            .put(
                &answer,
                json!({"score": score, "drivers": [4, null], "comment": "builds are slow"}),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    for (i, score) in [10, 9, 9, 0].into_iter().enumerate() {
        let (code, body) = app
            .with_session(&search[i])
            .put(&answer, json!({"score": score, "drivers": [2, 5], "comment": format!("search-only remark {i}")}))
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    // Bad answers lose nothing and say why.
    for bad in [
        json!({"score": 11}),
        json!({"score": 5, "drivers": [6]}),
        json!({"score": 5, "drivers": [1, 2, 3]}),
        json!({"score": "ten"}),
    ] {
        let (code, body) = app
            .with_session(&payments[0])
            .put(&answer, bad.clone())
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(!body.to_string().contains("ten"), "never quoted: {body}");
    }
    // One answer per person: the last payments developer changes 3 to 9.
    let (code, _) = app
        .with_session(&payments[5])
        .put(&answer, json!({"score": 9}))
        .await;
    assert_eq!(code, StatusCode::OK);
    let (_, open) = app
        .with_session(&payments[5])
        .get(&format!("{surveys}/open"))
        .await;
    assert_eq!(open[0]["answered"], true);
    assert_eq!(open[0]["mine"]["score"], 9, "their own answer: {open}");

    // Overall, 10 answers: promoters 7 (10 10 9 9 10 9 9), passive 1, detractors 2: NPS 50.
    let (code, all) = app.with_session(&pm).get(&results).await;
    assert_eq!(code, StatusCode::OK, "{all}");
    assert_eq!(all["responses"], 10);
    assert_eq!(all["nps"], 50);
    // Results are kept between reads, and an answer changed is seen at once:
    // 9 → 0 makes a promoter a detractor (6 − 3 of 10: NPS 30), and back.
    for (score, nps) in [(0, 30), (9, 50)] {
        let (code, _) = app
            .with_session(&payments[5])
            .put(&answer, json!({"score": score}))
            .await;
        assert_eq!(code, StatusCode::OK);
        let (_, again) = app.with_session(&pm).get(&results).await;
        assert_eq!(again["nps"], nps, "{again}");
    }
    assert_eq!(all["nps"], 50);
    assert_eq!(
        (&all["promoters"], &all["passives"], &all["detractors"]),
        (&json!(7), &json!(1), &json!(2))
    );
    // Everyone was asked: 6 + 1 in payments, 5 in search, the PM.
    assert_eq!(all["audience"], 13);
    assert!((all["response_rate"].as_f64().unwrap() - 10.0 / 13.0).abs() < 1e-9);
    // payments (6 answers): 10 10 9 8 6 9 is 4 promoters, 1 detractor: 50.
    let team = |name: &str| {
        all["by_team"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["team"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(team("payments")["nps"], 50, "{all}");
    assert_eq!(team("payments")["responses"], 6);
    assert_eq!(team("payments")["drivers"], json!([4.0, null]));
    // search answered 4 times: hidden, nothing of it shown.
    assert_eq!(team("search"), json!({"team": "search", "hidden": true}));
    // Comments by theme, overall only (the changed answer replaced its comment too).
    assert_eq!(all["themes"][0]["theme"], "Build speed");
    assert_eq!(all["themes"][0]["count"], 5);

    // A lead sees their team's results, not another team's nor the platform's.
    let (code, mine) = app
        .with_session(&lead)
        .get(&format!("{results}?team=payments"))
        .await;
    assert_eq!(code, StatusCode::OK, "{mine}");
    assert_eq!(mine["nps"], 50);
    let (code, _) = app.with_session(&lead).get(&results).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, _) = app
        .with_session(&lead)
        .get(&format!("{results}?team=search"))
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // The search team's own view (a PM asking) shows nothing: no score, no comment.
    let (_, hidden) = app
        .with_session(&pm)
        .text("GET", &format!("{results}?team=search"), None)
        .await;
    let hidden_json: Value = serde_json::from_str(&hidden).unwrap();
    assert_eq!(hidden_json["hidden"], true, "{hidden}");
    assert_eq!(hidden_json["nps"], Value::Null);
    assert!(!hidden.contains("search-only remark"), "{hidden}");
    // Developers see no results.
    let (code, _) = app.with_session(&payments[0]).get(&results).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // Nor do they, or a lead, export them or edit the themes.
    for who in [&payments[0], &lead] {
        let (code, _) = app
            .with_session(who)
            .text("GET", &format!("{surveys}/{id}/results.csv"), None)
            .await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        let (code, _) = app
            .with_session(who)
            .put(
                &format!("{surveys}/{id}/themes"),
                json!({"themes": [{"name": "x", "keywords": ["y"]}]}),
            )
            .await;
        assert_eq!(code, StatusCode::FORBIDDEN);
    }
    // A service token has no prompt to snooze.
    let (code, _) = app
        .as_(ADMIN)
        .post(
            &format!("{surveys}/{id}/prompt"),
            json!({"action": "snooze"}),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);

    // CSV: one row per answer; a team named only where its group is shown.
    let (code, csv) = app
        .with_session(&pm)
        .text("GET", &format!("{surveys}/{id}/results.csv"), None)
        .await;
    assert_eq!(code, StatusCode::OK);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 11, "{csv}");
    assert_eq!(
        lines[0],
        "score,Ease of delivery,Documentation,teams,comment"
    );
    let teams: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(3).unwrap_or_default())
        .collect();
    assert_eq!(teams.iter().filter(|t| **t == "payments").count(), 6);
    assert_eq!(teams.iter().filter(|t| t.is_empty()).count(), 4, "{csv}");

    // The tables: no answer carries a person, and who answered carries no answer.
    let db = &app.state.core.db;
    let people: Vec<(i64, String)> = sqlx::query_as("SELECT id, subject FROM users")
        .fetch_all(db)
        .await
        .unwrap();
    let rows: Vec<AnswerRow> = sqlx::query_as(
        "SELECT id, owner_key, teams, persona, score, drivers, comment FROM survey_answers",
    )
    .fetch_all(db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 10, "one row per person, changes included");
    let dump = format!("{rows:?}");
    for (user_id, subject) in &people {
        assert!(!dump.contains(subject.as_str()), "{subject} in {dump}");
        assert!(
            rows.iter().all(|r| r.0 != user_id.to_string()),
            "a user id as an answer id"
        );
    }
    let respondent_columns: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM pragma_table_info('survey_respondents')")
            .fetch_all(db)
            .await
            .unwrap();
    assert_eq!(
        respondent_columns
            .into_iter()
            .map(|c| c.0)
            .collect::<Vec<_>>(),
        ["survey_id", "user_id"]
    );
    assert!(
        rows.iter().all(|r| r.1.is_some()),
        "open: owners can find their own"
    );

    // Closed: no more answers, and the owner keys are gone for good.
    clock.set((T0 + 15 * 86_400) * 1000);
    let (code, body) = app
        .with_session(&payments[0])
        .put(&answer, json!({"score": 0}))
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    let (code, closed) = app.with_session(&pm).get(&results).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(closed["survey"]["state"], "closed");
    assert_eq!(closed["nps"], 50);
    let keys: Vec<(Option<String>,)> = sqlx::query_as("SELECT owner_key FROM survey_answers")
        .fetch_all(db)
        .await
        .unwrap();
    assert!(keys.iter().all(|k| k.0.is_none()), "{keys:?}");
    let (_, rounds) = app.with_session(&pm).get(surveys).await;
    assert_eq!(rounds[0]["nps"], 50, "{rounds}");
    assert_eq!(rounds[0]["responses"], 10);
}

#[tokio::test]
async fn audiences_prompts_and_small_surveys() {
    let clock = Arc::new(ManualClock::at(T0 * 1000));
    let app = test_app_with_clock(&[], clock.clone()).await;
    let pm = app
        .session_for("pat", &[], &[PlatformRole::PlatformPm])
        .await;
    let pay = app
        .session_for("pay", &[("payments", TeamRole::Member)], &[])
        .await;
    let find = app
        .session_for("find", &[("search", TeamRole::Member)], &[])
        .await;
    let surveys = "/api/outcomes/v1/surveys";
    let (code, survey) = app
        .with_session(&pm)
        .post(
            surveys,
            json!({"title": "Payments only", "audience": {"teams": ["payments"]}, "comment": false}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{survey}");
    let id = survey["id"].as_str().unwrap();
    // Another team is not asked, and cannot answer.
    let (_, open) = app
        .with_session(&find)
        .get(&format!("{surveys}/open"))
        .await;
    assert_eq!(open, json!([]));
    let (code, _) = app
        .with_session(&find)
        .put(&format!("{surveys}/{id}/answer"), json!({"score": 7}))
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // A comment the survey does not ask for is refused.
    let (code, _) = app
        .with_session(&pay)
        .put(
            &format!("{surveys}/{id}/answer"),
            json!({"score": 7, "comment": "hello"}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let (code, _) = app
        .with_session(&pay)
        .put(&format!("{surveys}/{id}/answer"), json!({"score": 7}))
        .await;
    assert_eq!(code, StatusCode::OK);
    // One answer of one person: nothing but the count is shown, even to the PM.
    let (_, results) = app
        .with_session(&pm)
        .get(&format!("{surveys}/{id}/results"))
        .await;
    assert_eq!(results["hidden"], true, "{results}");
    assert_eq!(results["nps"], Value::Null);
    assert_eq!(results["responses"], 1);
    assert_eq!(results["distribution"], json!([]));
    assert_eq!(results["audience"], 1);

    // The prompt: snoozed for three days, dismissed for good.
    let (code, second) = app
        .with_session(&pm)
        .post(surveys, json!({"title": "Everyone"}))
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let second = second["id"].as_str().unwrap();
    let (code, _) = app
        .with_session(&find)
        .post(
            &format!("{surveys}/{second}/prompt"),
            json!({"action": "snooze"}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let core = &app.state.core;
    let principal = |subject: &str| {
        let subject = subject.to_owned();
        async move {
            let id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE subject = ?1")
                .bind(&subject)
                .fetch_one(&core.db)
                .await
                .unwrap();
            paved_core::identity::load_principal(
                &core.db,
                id,
                paved_core::auth::AuthMethod::Session,
            )
            .await
            .unwrap()
            .unwrap()
        }
    };
    let find_p = principal("find").await;
    let prompt = |now: i64| {
        let find_p = find_p.clone();
        async move {
            paved_core::outcomes::surveys::open_for(core, &find_p, now, true)
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(prompt(T0 + 86_400).await, 0, "snoozed");
    assert_eq!(prompt(T0 + 4 * 86_400).await, 1, "back after three days");
    let (code, _) = app
        .with_session(&find)
        .post(
            &format!("{surveys}/{second}/prompt"),
            json!({"action": "dismiss"}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert_eq!(prompt(T0 + 10 * 86_400).await, 0, "dismissed");
}

/// Hostile survey input: malformed and oversized bodies are refused without
/// keeping anything, a comment a spreadsheet would run as a formula stays
/// text in the CSV, and control characters never reach a survey's title.
#[tokio::test]
async fn attack_hostile_survey_input_is_refused_or_kept_as_text() {
    let clock = Arc::new(ManualClock::at(T0 * 1000));
    let app = test_app_with_clock(&[], clock).await;
    let pm = app
        .session_for("pat", &[], &[PlatformRole::PlatformPm])
        .await;
    let mut people = Vec::new();
    for i in 0..5 {
        people.push(
            app.session_for(&format!("dev{i}"), &[("payments", TeamRole::Member)], &[])
                .await,
        );
    }
    let surveys = "/api/outcomes/v1/surveys";
    let (code, body) = app
        .with_session(&pm)
        .post(surveys, json!({"title": "line\n---\nbreak"}))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, survey) = app
        .with_session(&pm)
        .post(surveys, json!({"title": "Pulse"}))
        .await;
    let answer = format!("{surveys}/{}/answer", survey["id"].as_str().unwrap());
    let (code, _) = app
        .with_session(&people[0])
        .text("PUT", &answer, None)
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "an empty body");
    let (code, _) = app
        .with_session(&people[0])
        .put(&answer, json!({"score": 5, "comment": "x".repeat(2001)}))
        .await;
    assert_eq!(
        code,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an oversized comment"
    );
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM survey_answers")
            .fetch_one(&app.state.core.db)
            .await
            .unwrap()
    };
    assert_eq!(count().await, 0, "nothing kept from refused answers");
    for who in &people {
        let (code, _) = app
            .with_session(who)
            .put(
                &answer,
                json!({"score": 9, "comment": "=HYPERLINK(\"http://evil.example\",\"x\")"}),
            )
            .await;
        assert_eq!(code, StatusCode::OK);
    }
    let (_, csv) = app
        .with_session(&pm)
        .text(
            "GET",
            &format!("{surveys}/{}/results.csv", survey["id"].as_str().unwrap()),
            None,
        )
        .await;
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 5, "{csv}");
    assert!(rows.iter().all(|r| r.contains("\"'=HYPERLINK(")), "{csv}");
}

#[tokio::test]
async fn the_home_prompt_offers_an_open_survey_once_and_the_page_shows_each_role_its_part() {
    let clock = Arc::new(ManualClock::at(T0 * 1000));
    let app = test_app_with_clock(&[], clock.clone()).await;
    let pm = app
        .session_for("pat", &[], &[PlatformRole::PlatformPm])
        .await;
    let lead = app
        .session_for("lee", &[("payments", TeamRole::Lead)], &[])
        .await;
    let dev = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let other = app
        .session_for("sid", &[("search", TeamRole::Member)], &[])
        .await;

    // Nothing open: no prompt.
    let r = app.with_session(&dev).call("survey_prompt_next", "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body_json(r).await, Value::Null);

    // The PM's builder posts through the server function.
    let r = app
        .with_session(&pm)
        .call_json(
            "survey_new",
            json!({"input": {"title": "Payments pulse", "drivers": ["Docs"], "audience": {"teams": ["payments"]}}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let id = body_json(r).await["id"].as_str().unwrap().to_owned();
    // A developer cannot create one.
    let r = app
        .with_session(&dev)
        .call_json("survey_new", json!({"input": {"title": "Mine"}}))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The payments developer is prompted; search is not asked.
    let r = app.with_session(&dev).call("survey_prompt_next", "").await;
    assert_eq!(body_json(r).await["id"], json!(id));
    let r = app
        .with_session(&other)
        .call("survey_prompt_next", "")
        .await;
    assert_eq!(body_json(r).await, Value::Null);

    // "Later" hides it for three days, then it comes back; answering ends it.
    let r = app
        .with_session(&dev)
        .call("survey_hold", &format!("id={id}&dismiss=false"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.with_session(&dev).call("survey_prompt_next", "").await;
    assert_eq!(body_json(r).await, Value::Null);
    clock.set((T0 + 3 * 86_400 + 1) * 1000);
    let r = app.with_session(&dev).call("survey_prompt_next", "").await;
    assert_eq!(body_json(r).await["id"], json!(id));
    let r = app
        .with_session(&dev)
        .call_json(
            "survey_respond",
            json!({"id": id, "answer": {"score": 9, "drivers": [4], "comment": "docs are good"}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.with_session(&dev).call("survey_prompt_next", "").await;
    assert_eq!(body_json(r).await, Value::Null);

    // The page: the developer sees their own answer and nothing platform-wide.
    let page = body_json(app.with_session(&dev).call("surveys_page_data", "").await).await;
    assert_eq!(page["platform"], json!(false));
    assert_eq!(page["rounds"], json!([]));
    assert_eq!(page["teams"], json!([]));
    assert_eq!(page["open"][0]["answered"], json!(true));
    assert_eq!(page["open"][0]["mine"]["score"], json!(9));
    // The lead sees the survey that asked their team (to open its results).
    let page = body_json(app.with_session(&lead).call("surveys_page_data", "").await).await;
    assert_eq!(page["led"], json!(["payments"]));
    assert_eq!(page["team_surveys"][0]["id"], json!(id));
    assert_eq!(page["rounds"], json!([]));
    // The PM sees every round (one answer: below the minimum, no NPS) and every team.
    let page = body_json(app.with_session(&pm).call("surveys_page_data", "").await).await;
    assert_eq!(page["platform"], json!(true));
    assert_eq!(page["rounds"][0]["responses"], json!(1));
    assert_eq!(page["rounds"][0]["nps"], Value::Null);
    assert!(page["teams"]
        .as_array()
        .unwrap()
        .contains(&json!("payments")));

    // "Don't ask again" is for good, even after the snooze would have ended.
    let r = app
        .with_session(&lead)
        .call("survey_hold", &format!("id={id}&dismiss=true"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    clock.set((T0 + 10 * 86_400) * 1000);
    let r = app.with_session(&lead).call("survey_prompt_next", "").await;
    assert_eq!(body_json(r).await, Value::Null);
}
