"""OxygenAgent's skills: courses, completed courses, pending exams, progress.

Each user sees only their own learning records. An admin may name another user
("courses for vishal"); anyone else who names another user gets a refusal and
no records.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict
from datetime import date

from services.common.answers import Answer, SkillInfo
from services.common.tokens import Identity
from services.oxygen.seed import URGENT_DAYS, courses_of, exams_of, known_users

CATALOG = [
    SkillInfo(
        id="my_courses",
        name="My courses",
        description="List your courses with progress and status.",
        tags=["learning", "courses"],
        examples=["show my courses", "what courses am I enrolled in"],
    ),
    SkillInfo(
        id="completed_courses",
        name="Completed courses",
        description="List the courses you have completed, with completion dates.",
        tags=["learning", "courses", "completed"],
        examples=["which courses have I completed", "show my completed courses"],
    ),
    SkillInfo(
        id="pending_exams",
        name="Pending exams",
        description="List your pending exams by deadline with the days left; "
        f"an exam due within {URGENT_DAYS} days is urgent.",
        tags=["learning", "exams", "deadlines"],
        examples=["show my pending exams", "when are my exam deadlines"],
    ),
    SkillInfo(
        id="progress_summary",
        name="Progress summary",
        description="Summarize your learning: course counts, average progress "
        "and the next exam deadline.",
        tags=["learning", "progress", "summary"],
        examples=["show my learning progress", "how am I doing"],
    ),
]

EXAMS = re.compile(r"\b(exams?|tests?|deadlines?|certifications?|due)\b", re.I)
COMPLETED = re.compile(r"\b(complet\w*|finish\w*|done|passed)\b", re.I)
IN_PROGRESS = re.compile(r"\bin\s+progress\b", re.I)
SUMMARY = re.compile(
    r"\b(progress|summary|summari[sz]e|overview|report|how am i doing)\b", re.I
)
COURSES = re.compile(
    r"\b(courses?|learning|trainings?|classes|enrolled|studying)\b", re.I
)
HELP = re.compile(r"^\W*(help|usage|what can you do)\W*$", re.I)
# "for vishal", "of happy", "alex's": a request about another user's records.
NAMED_USER = re.compile(r"\b(?:for|of)\s+(?:user\s+)?(\w+)\b|\b(\w+)'s\b", re.I)


def classify(text: str) -> str:
    """Return the id of the skill that `text` requests, or "help"."""
    if HELP.search(text):
        return "help"
    if EXAMS.search(text):
        return "pending_exams"
    if COMPLETED.search(text):
        return "completed_courses"
    if IN_PROGRESS.search(text):
        return "my_courses"
    if SUMMARY.search(text):
        return "progress_summary"
    if COURSES.search(text):
        return "my_courses"
    return "help"


def named_user(text: str) -> str | None:
    """Return a known user the request names, if any."""
    users = set(known_users())
    for match in NAMED_USER.finditer(text):
        name = (match.group(1) or match.group(2) or "").lower()
        if name in users:
            return name
    return None


class OxygenSkills:
    """The learning-platform domain behind OxygenAgent."""

    name = "OxygenAgent"
    description = (
        "Oxygen learning platform: your courses, completed courses, pending exams "
        "with deadlines, and a progress summary."
    )
    catalog = CATALOG
    # `answer` reads seeded in-memory data, in about 0.03 ms per call.
    blocking = False

    def __init__(self, today: Callable[[], date] = date.today) -> None:
        self._today = today

    def answer(self, text: str, identity: Identity) -> Answer:
        skill = classify(text)
        if skill == "help":
            return help_answer(explicit=HELP.search(text) is not None)

        target = named_user(text) or identity.username
        if target != identity.username and not identity.is_admin:
            refusal = (
                f"You can see only your own learning records, not {target}'s. "
                'Ask about yours, for example "show my courses".'
            )
            return Answer(skill, refusal, [])

        today = self._today()
        whose = "Your" if target == identity.username else f"{target}'s"
        match skill:
            case "pending_exams":
                return pending_exams(target, whose, today)
            case "completed_courses":
                return completed_courses(target, whose, today)
            case "progress_summary":
                return progress_summary(target, whose, today)
        return my_courses(target, whose, today)


def my_courses(username: str, whose: str, today: date) -> Answer:
    courses = courses_of(username, today)
    if not courses:
        return Answer("my_courses", f"{whose} courses: none yet.", [])
    lines = [f"{whose} courses ({len(courses)}):", ""]
    lines += ["| course | title | status | progress |", "|---|---|---|---|"]
    for course in courses:
        lines.append(
            f"| {course.course_id} | {course.title} | {course.status} "
            f"| {course.progress}% |"
        )
    return Answer("my_courses", "\n".join(lines), [asdict(c) for c in courses])


def completed_courses(username: str, whose: str, today: date) -> Answer:
    courses = [c for c in courses_of(username, today) if c.status == "completed"]
    if not courses:
        return Answer("completed_courses", f"{whose} completed courses: none yet.", [])
    lines = [f"{whose} completed courses ({len(courses)}):", ""]
    for course in courses:
        lines.append(
            f"- **{course.title}** ({course.course_id}), "
            f"completed {course.completed_at}"
        )
    return Answer("completed_courses", "\n".join(lines), [asdict(c) for c in courses])


def pending_exams(username: str, whose: str, today: date) -> Answer:
    exams = [e for e in exams_of(username, today) if e.status == "pending"]
    if not exams:
        return Answer("pending_exams", f"{whose} pending exams: none.", [])
    lines = [f"{whose} pending exams ({len(exams)}), earliest deadline first:", ""]
    for exam in exams:
        flag = ", **urgent**" if exam.urgent else ""
        lines.append(
            f"- **{exam.course}** exam ({exam.exam_id}): due {exam.deadline}, "
            f"{days_phrase(exam.days_left)}{flag}"
        )
    return Answer("pending_exams", "\n".join(lines), [asdict(e) for e in exams])


def progress_summary(username: str, whose: str, today: date) -> Answer:
    courses = courses_of(username, today)
    exams = exams_of(username, today)
    pending = [exam for exam in exams if exam.status == "pending"]
    completed = sum(1 for course in courses if course.status == "completed")
    average = 0.0
    if courses:
        average = round(sum(course.progress for course in courses) / len(courses), 1)
    next_exam = pending[0] if pending else None
    summary = {
        "user": username,
        "courses_total": len(courses),
        "courses_completed": completed,
        "courses_enrolled": len(courses) - completed,
        "average_progress": average,
        "exams_pending": len(pending),
        "exams_passed": sum(1 for exam in exams if exam.status == "passed"),
        "urgent_exams": sum(1 for exam in pending if exam.urgent),
        "next_exam": next_exam.exam_id if next_exam else None,
        "next_deadline": next_exam.deadline if next_exam else None,
        "days_left": next_exam.days_left if next_exam else None,
    }
    lines = [
        f"{whose} learning progress:",
        "",
        f"- courses: {len(courses)} ({completed} completed, "
        f"{summary['courses_enrolled']} in progress)",
        f"- average progress: {average}%",
        f"- exams: {summary['exams_pending']} pending, "
        f"{summary['exams_passed']} passed",
    ]
    if next_exam:
        lines.append(
            f"- next deadline: **{next_exam.course}** exam on {next_exam.deadline} "
            f"({days_phrase(next_exam.days_left)})"
        )
    return Answer("progress_summary", "\n".join(lines), [summary])


def days_phrase(days_left: int) -> str:
    if days_left < 0:
        return f"overdue by {-days_left} days"
    if days_left == 1:
        return "1 day left"
    return f"{days_left} days left"


def help_answer(explicit: bool) -> Answer:
    lines = ["I show your Oxygen learning records. Ask me, for example:", ""]
    if not explicit:
        lines.insert(0, "I could not map that request to a learning skill.")
    for info in CATALOG:
        examples = ", ".join(f'"{example}"' for example in info.examples)
        lines.append(f"- **{info.name}**: {examples}")
    return Answer("help", "\n".join(lines), [])
