"""OxygenAgent over real A2A calls: each skill's values and per-user isolation.

Expected values come from the seed offsets, so they hold on any day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from conftest import Project, RunningService, agent_answer, agent_token, make_project

from services.oxygen.seed import SEED, URGENT_DAYS


@pytest.fixture(scope="module")
def oxygen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    project = make_project(tmp_path_factory.mktemp("oxygen"))
    running = project.start("oxygen")
    yield running, project
    running.stop()


def ask(oxygen: tuple[RunningService, Project], user: str, text: str) -> tuple:
    running, project = oxygen
    role = "admin" if user == "admin" else "developer"
    return agent_answer(running.url, agent_token(project, user, role), text)


def seed_courses(user: str) -> list:
    return list(SEED[user][0])


def seed_pending_exams(user: str) -> list:
    exams = [exam for exam in SEED[user][1] if exam.status == "pending"]
    return sorted(exams, key=lambda exam: exam.deadline_in_days)


@pytest.mark.parametrize("user", ["vishal", "happy", "alex", "admin"])
def test_my_courses_values(oxygen: tuple, user: str) -> None:
    _, data = ask(oxygen, user, "show my courses")

    records = data["records"]
    expected_ids = [course.course_id for course in seed_courses(user)]
    assert data["skill"] == "my_courses"
    assert [record["course_id"] for record in records] == expected_ids
    for record, seed in zip(records, seed_courses(user), strict=True):
        assert record["progress"] == seed.progress
        expected_status = "completed" if seed.completed_days_ago else "enrolled"
        assert record["status"] == expected_status


def test_completed_courses_dates(oxygen: tuple) -> None:
    today = date.today()
    expected = {
        course.course_id: str(today - timedelta(days=course.completed_days_ago))
        for course in seed_courses("vishal")
        if course.completed_days_ago is not None
    }

    text, data = ask(oxygen, "vishal", "which courses have I completed")

    assert data["skill"] == "completed_courses"
    completed = {r["course_id"]: r["completed_at"] for r in data["records"]}
    assert completed == expected
    assert "Python Fundamentals" in text


@pytest.mark.parametrize("user", ["vishal", "happy"])
def test_pending_exams_by_deadline(oxygen: tuple, user: str) -> None:
    today = date.today()
    expected = seed_pending_exams(user)

    text, data = ask(oxygen, user, "show my pending exams")

    records = data["records"]
    assert data["skill"] == "pending_exams"
    assert [r["exam_id"] for r in records] == [e.exam_id for e in expected]
    for record, exam in zip(records, expected, strict=True):
        deadline = today + timedelta(days=exam.deadline_in_days)
        assert record["deadline"] == deadline.isoformat()
        assert record["days_left"] == exam.deadline_in_days
        assert record["urgent"] == (exam.deadline_in_days <= URGENT_DAYS)
    assert f"{expected[0].deadline_in_days} days left, **urgent**" in text


def test_happy_exams_sorted_not_seed_order(oxygen: tuple) -> None:
    seed_order = [e.exam_id for e in SEED["happy"][1] if e.status == "pending"]

    _, data = ask(oxygen, "happy", "when are my exam deadlines")

    ids = [record["exam_id"] for record in data["records"]]
    assert ids == ["EX-AWS150", "EX-TF200"]
    assert ids != seed_order


def test_progress_summary_values(oxygen: tuple) -> None:
    courses = seed_courses("vishal")
    pending = seed_pending_exams("vishal")
    completed = sum(1 for c in courses if c.completed_days_ago is not None)
    average = round(sum(c.progress for c in courses) / len(courses), 1)

    text, data = ask(oxygen, "vishal", "how am I doing")

    summary = data["records"][0]
    assert data["skill"] == "progress_summary"
    assert summary["courses_total"] == len(courses)
    assert summary["courses_completed"] == completed
    assert summary["courses_enrolled"] == len(courses) - completed
    assert summary["average_progress"] == average
    assert summary["exams_pending"] == len(pending)
    assert summary["next_exam"] == pending[0].exam_id
    assert summary["days_left"] == pending[0].deadline_in_days
    assert f"average progress: {average}%" in text


def test_other_users_data_refused(oxygen: tuple) -> None:
    text, data = ask(oxygen, "vishal", "show the courses of happy")

    assert data["records"] == []
    assert text.startswith("You can see only your own learning records")


def test_user_sees_only_own_courses(oxygen: tuple) -> None:
    _, vishal = ask(oxygen, "vishal", "show my courses")
    _, happy = ask(oxygen, "happy", "show my courses")

    vishal_ids = {record["course_id"] for record in vishal["records"]}
    happy_ids = {record["course_id"] for record in happy["records"]}
    assert vishal_ids.isdisjoint(happy_ids)


def test_admin_may_name_a_user(oxygen: tuple) -> None:
    text, data = ask(oxygen, "admin", "pending exams for happy")

    ids = [record["exam_id"] for record in data["records"]]
    assert ids == [exam.exam_id for exam in seed_pending_exams("happy")]
    assert text.startswith("happy's pending exams")


def test_unknown_user_has_no_courses(oxygen: tuple) -> None:
    text, data = ask(oxygen, "carol", "show my courses")

    assert data["records"] == []
    assert text == "Your courses: none yet."


def test_unmappable_request_returns_help(oxygen: tuple) -> None:
    text, data = ask(oxygen, "alex", "order a pizza")

    assert data["skill"] == "help"
    assert text.startswith("I could not map that request to a learning skill.")
    assert '"show my pending exams"' in text
