"""Where demo members live, what they are called, their postal addresses and birthdays.

Countries come with their currency, a pool of first and last names and their time zones;
e-mail addresses are built from the names and always end in a domain that is never delivered.
"""

from __future__ import annotations

import random
import unicodedata
from calendar import isleap
from datetime import date
from itertools import accumulate

# (ISO code, weight, currency, name pool, IANA zones; a zone repeated weighs more).
# Eurozone and UK members pay in EUR / GBP; everyone else in USD (about two thirds).
COUNTRIES: tuple[tuple[str, float, str, str, tuple[str, ...]], ...] = (
    (
        "US",
        36,
        "USD",
        "en",
        (
            "America/New_York",
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Los_Angeles",
            "America/Los_Angeles",
        ),
    ),
    ("CA", 5, "USD", "en", ("America/Toronto", "America/Toronto", "America/Vancouver")),
    ("GB", 9, "GBP", "en", ("Europe/London",)),
    ("IE", 2, "EUR", "en", ("Europe/Dublin",)),
    ("DE", 7, "EUR", "de", ("Europe/Berlin",)),
    ("FR", 5, "EUR", "fr", ("Europe/Paris",)),
    ("ES", 3, "EUR", "es", ("Europe/Madrid",)),
    ("IT", 3, "EUR", "it", ("Europe/Rome",)),
    ("NL", 3, "EUR", "nl", ("Europe/Amsterdam",)),
    ("SE", 2, "EUR", "sv", ("Europe/Stockholm",)),
    ("BR", 3, "USD", "pt", ("America/Sao_Paulo",)),
    ("MX", 3, "USD", "es", ("America/Mexico_City",)),
    ("IN", 5, "USD", "hi", ("Asia/Kolkata",)),
    ("JP", 3, "USD", "ja", ("Asia/Tokyo",)),
    ("AU", 4, "USD", "en", ("Australia/Sydney", "Australia/Melbourne", "Australia/Perth")),
    ("NZ", 1, "USD", "en", ("Pacific/Auckland",)),
    ("SG", 2, "USD", "zh", ("Asia/Singapore",)),
    ("ZA", 1, "USD", "af", ("Africa/Johannesburg",)),
)
COUNTRY_CUMULATIVE = list(accumulate(c[1] for c in COUNTRIES))

NAME_POOLS = {
    "en": (
        "James Mary Olivia Liam Emma Noah Ava Ethan Sophia Lucas Chloe Zoë Mason Harper",
        "Smith Johnson Williams Brown Jones Miller Davis Wilson Taylor Clark O'Brien Nguyen",
    ),
    "es": (
        "José María Lucía Javier Sofía Diego Carmen Pablo Valentina Mateo",
        "García Martínez López Hernández González Rodríguez Pérez Sánchez Ramírez Torres",
    ),
    "de": (
        "Lukas Anna Jonas Lea Felix Mia Leon Hannah Jürgen Sophie",
        "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schäfer Koch",
    ),
    "fr": (
        "Louis Camille Léa Hugo Chloé Gabriel Manon Jules Inès Arthur",
        "Martin Bernard Dubois Thomas Robert Richard Petit Durand Lefèvre Moreau",
    ),
    "it": (
        "Giulia Marco Francesca Luca Chiara Matteo Sara Alessandro Martina Lorenzo",
        "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco",
    ),
    "nl": (
        "Daan Emma Sem Julia Lucas Tess Finn Sanne Bram Fleur",
        "de_Jong Jansen de_Vries van_den_Berg Bakker Visser Smit Meijer de_Boer Mulder",
    ),
    "sv": (
        "Erik Astrid Lars Ingrid Oskar Elsa Nils Maja Anders Åsa",
        "Andersson Johansson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Öberg",
    ),
    "pt": (
        "João Ana Pedro Beatriz Lucas Mariana Gabriel Larissa Rafael Camila",
        "Silva Santos Oliveira Souza Lima Pereira Ferreira Costa Rodrigues Almeida",
    ),
    "ja": (
        "Haruto Yui Sota Hina Ren Sakura Yuto Aoi Daiki Mei",
        "Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Kato",
    ),
    "hi": (
        "Aarav Priya Vihaan Ananya Arjun Diya Rohan Isha Kabir Meera",
        "Sharma Patel Singh Kumar Gupta Reddy Iyer Nair Das Mehta",
    ),
    "zh": (
        "Wei Mei_Ling Jun Xin_Yi Hao Hui_Min Kai Li_Na",
        "Tan Lim Lee Ng Wong Goh Chua Teo",
    ),
    "af": (
        "Thabo Lerato Sipho Naledi Pieter Anika Johan Zanele",
        "Nkosi Dlamini van_der_Merwe Botha Mokoena Naidoo Pretorius Khumalo",
    ),
}
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")  # RFC 2606: never delivered
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def slugify(name: str) -> str:
    """ASCII letters only, for e-mail local parts (``Zoë O'Brien`` → ``zoe``, ``obrien``)."""
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalpha())


def _names(words: str) -> tuple[tuple[str, str], ...]:
    # Underscores stand for spaces inside one name ("van_den_Berg").
    return tuple((w.replace("_", " "), slugify(w)) for w in words.split())


NAMES = {pool: (_names(first), _names(last)) for pool, (first, last) in NAME_POOLS.items()}


_STREETS = ("Market Street", "Station Road", "Harbour Lane", "Elm Avenue", "Mill Way")


def derive_address(index: int, country: str) -> list[str]:
    """A postal address for nine members in ten, derived from the index alone (so adding
    it left every other generated value unchanged)."""
    spread = (index * 2_654_435_761) % 4_294_967_296
    if spread % 10 == 0:
        return ["", "", ""]
    street = _STREETS[spread % len(_STREETS)]
    city = f"{country or 'Demo'} City {1 + spread % 7}"
    return [f"{1 + spread % 240} {street}", city, f"{10000 + spread % 89999}"]


def draw_birthday(r: random.Random, end_year: int) -> str:
    """Mostly a full date (ages 18–75), some month-day only, some unknown."""
    rand = r.random
    kind = rand()
    if kind >= 0.9:
        return ""
    # Month-day birthdays are drawn from a leap year so that 02-29 can turn up.
    year = 2000 if kind >= 0.78 else end_year - 18 - int(rand() * 57)
    first_of_year = date(year, 1, 1).toordinal()
    born = date.fromordinal(first_of_year + int(rand() * (366 if isleap(year) else 365)))
    return born.isoformat() if kind < 0.78 else born.isoformat()[5:]
