"""OxygenAgent: courses, exams and learning progress over A2A."""
