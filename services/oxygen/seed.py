"""The demo learning records of each user, with dates relative to today.

Completion dates and exam deadlines are stored as day offsets from the day of
the request, so "days left" and the urgent flag mean the same whenever the demo
runs. The offsets are the single source of the values, and tests compute their
expected results from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

# An exam due within this many days is urgent.
URGENT_DAYS = 7


@dataclass(frozen=True)
class CourseSeed:
    """A course a user is enrolled in; completed when `completed_days_ago` is set."""

    course_id: str
    title: str
    progress: int
    completed_days_ago: int | None = None


@dataclass(frozen=True)
class ExamSeed:
    """An exam of one course, due `deadline_in_days` after today."""

    exam_id: str
    course_id: str
    deadline_in_days: int
    status: str


@dataclass(frozen=True)
class Course:
    """A course as one user sees it on one day."""

    course_id: str
    title: str
    status: str
    progress: int
    completed_at: str | None


@dataclass(frozen=True)
class Exam:
    """An exam as one user sees it on one day."""

    exam_id: str
    course_id: str
    course: str
    deadline: str
    days_left: int
    status: str
    urgent: bool


SEED: dict[str, tuple[tuple[CourseSeed, ...], tuple[ExamSeed, ...]]] = {
    "vishal": (
        (
            CourseSeed("PY101", "Python Fundamentals", 100, completed_days_ago=40),
            CourseSeed("K8S201", "Kubernetes for Developers", 65),
            CourseSeed("SEC110", "Secure Coding Basics", 30),
            CourseSeed("GIT100", "Git Workflows", 100, completed_days_ago=12),
        ),
        (
            ExamSeed("EX-K8S201", "K8S201", 5, "pending"),
            ExamSeed("EX-SEC110", "SEC110", 21, "pending"),
            ExamSeed("EX-PY101", "PY101", -35, "passed"),
        ),
    ),
    "happy": (
        (
            CourseSeed("AWS150", "AWS Cloud Practitioner", 80),
            CourseSeed("TF200", "Terraform in Practice", 45),
            CourseSeed("LNX100", "Linux Administration", 100, completed_days_ago=60),
        ),
        (
            ExamSeed("EX-TF200", "TF200", 14, "pending"),
            ExamSeed("EX-AWS150", "AWS150", 3, "pending"),
            ExamSeed("EX-LNX100", "LNX100", -50, "passed"),
        ),
    ),
    "alex": (
        (
            CourseSeed("JS120", "Modern JavaScript", 20),
            CourseSeed("REACT210", "React Essentials", 10),
        ),
        (ExamSeed("EX-JS120", "JS120", 30, "pending"),),
    ),
    "admin": (
        (
            CourseSeed("GOV300", "IT Governance", 100, completed_days_ago=90),
            CourseSeed("FIN210", "Cloud FinOps Foundations", 55),
        ),
        (
            ExamSeed("EX-FIN210", "FIN210", 10, "pending"),
            ExamSeed("EX-GOV300", "GOV300", -80, "passed"),
        ),
    ),
}


def known_users() -> list[str]:
    return sorted(SEED)


def courses_of(username: str, today: date) -> list[Course]:
    """Return the user's courses in seed order; an unknown user has none."""
    course_seeds, _ = SEED.get(username, ((), ()))
    courses = []
    for seed in course_seeds:
        completed_at = None
        if seed.completed_days_ago is not None:
            completed_at = (today - timedelta(days=seed.completed_days_ago)).isoformat()
        status = "completed" if completed_at else "enrolled"
        courses.append(
            Course(seed.course_id, seed.title, status, seed.progress, completed_at)
        )
    return courses


def exams_of(username: str, today: date) -> list[Exam]:
    """Return the user's exams sorted by deadline, earliest first."""
    course_seeds, exam_seeds = SEED.get(username, ((), ()))
    titles = {seed.course_id: seed.title for seed in course_seeds}
    exams = []
    for seed in exam_seeds:
        deadline = today + timedelta(days=seed.deadline_in_days)
        days_left = seed.deadline_in_days
        urgent = seed.status == "pending" and days_left <= URGENT_DAYS
        exams.append(
            Exam(
                exam_id=seed.exam_id,
                course_id=seed.course_id,
                course=titles.get(seed.course_id, seed.course_id),
                deadline=deadline.isoformat(),
                days_left=days_left,
                status=seed.status,
                urgent=urgent,
            )
        )
    return sorted(exams, key=lambda exam: (exam.deadline, exam.exam_id))
