"""Install the volunteer points ledger: ``pip install -e .`` (add ``[test]`` for the suite)."""

from setuptools import find_packages, setup

setup(
    name="volunteer-points-ledger",
    version="0.1.0",
    description=(
        "Append-only, double-entry ledger of volunteer service, party-member and "
        "co-building-unit points for community governance"
    ),
    python_requires=">=3.11",
    packages=find_packages(include=["ledger", "ledger.*"]),
    include_package_data=True,
    package_data={"ledger": ["templates/*.html", "default_rules.yaml", "fonts/*"]},
    install_requires=[
        "Flask>=3.1,<4",
        "Flask-SQLAlchemy>=3.1,<4",
        "Flask-Migrate>=4.0,<5",
        "flask-smorest>=0.45,<1",
        "marshmallow>=3.22,<5",
        "PyYAML>=6.0,<7",
        "apispec>=6.6,<7",
        "SQLAlchemy>=2.0.36,<2.2",
        "alembic>=1.14,<2",
        "psycopg[binary]>=3.2,<4",
        "orjson>=3.10,<4",
        "waitress>=3.0,<4",
        "argon2-cffi>=23.1",
        "Flask-Limiter>=3.5",
        "swagger-ui-bundle>=1.1",
        "tzdata>=2024.1",
        "XlsxWriter>=3.2,<4",
        "openpyxl>=3.1,<4",
        "fpdf2>=2.8,<3",
    ],
    extras_require={
        "production": ["gunicorn>=22"],
        "test": [
            "pytest>=8.3",
            "hypothesis>=6.100",
            "pytest-xdist>=3.5",
            "rfc8785>=0.1.4",
            "schemathesis>=4.0,<5",
            "openpyxl>=3.1,<4",
            "pypdf>=5",
        ],
    },
    entry_points={"console_scripts": ["ledger = ledger.cli:main"]},
)
