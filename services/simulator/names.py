"""Word lists the rider generator draws from (British-flavoured, like the real feed)."""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


MALE_FIRST = _words("""
    Steven James Oliver Harry George Jack Thomas William Daniel Matthew Joshua Samuel Benjamin
    Joseph Ryan Adam Liam Callum Connor Kieran Mohammed Ali Arjun Rohan David Paul Mark Gary Ian
    Neil Graham Keith Colin Derek Trevor Nigel Alan Brian Kevin Stuart Aaron Lewis Dominic
    Patrick Sean Owen Rhys
""")
FEMALE_FIRST = _words("""
    Amelia Olivia Isla Emily Ava Jessica Sophie Grace Chloe Lucy Hannah Charlotte Megan Ellie
    Holly Amy Rebecca Laura Sarah Rachel Gemma Natalie Priya Aisha Fatima Zara Julie Karen Susan
    Helen Tracey Joanne Deborah Margaret Patricia Janet Pauline Carol Sandra Valerie Lauren
    Abigail Eleanor Katie Bethany Leah
""")
NEUTRAL_FIRST = _words("""
    Alex Sam Charlie Jamie Robin Jordan Taylor Morgan Riley Frankie Ashley Casey Jude Rowan Sasha
    Kit
""")
SURNAMES = _words("""
    Pearce Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans
    Walker White Roberts Green Hall Wood Jackson Clarke Patel Khan Lewis James Phillips Mason
    Mitchell Rose Davis Rodriguez Cox Alexander Morgan Moore Harris Simpson Wilkinson Ryan Hughes
    Edwards Turner Hill Cooper Ward Morris King Baker Harrison Chapman Kaur Singh Begum O'Brien
    Murphy Campbell Stewart Kelly Bennett Gray Price Bell Ahmed Hussain Shaw Lloyd Ellis Fox
    Marshall Owen Holmes Barker Dixon
""")
# Titles are part of the name field but not of the first name; some carry a dot, some do not.
TITLES_MALE = _words("Mr Mr. Dr Dr. Prof Prof.")
TITLES_FEMALE = _words("Mrs Mrs. Miss Ms Ms. Dr Dr. Prof.")
TITLES_OTHER = _words("Mx Mx. Dr Prof")
# Anything but male/female counts as "other" downstream.
OTHER_GENDERS = ("other", "non-binary", "prefer not to say", "agender")
STREET_SUFFIXES = _words("""
    locks mill road street lane green park square gardens crescent way court view fields hill
    avenue close drive grove mews row walk terrace place rise wharf ford bridge mount vale
""")
CITY_SUFFIXES = _words(
    "shire town ton borough bury ham chester mouth ford field port side stead wick ley worth"
)
REAL_CITIES = _words("London Manchester Birmingham Leeds Bristol Glasgow Cardiff")
POSTCODE_AREAS = _words("E N W SE SW NW EC WC M B LS BS G CF L S")
# Only reserved domains (RFC 2606 / RFC 6761): simulated riders are driven over their limit by
# load tests, and with a real SES account a real domain would mail strangers health warnings.
EMAIL_DOMAINS = _words("""
    gmail.example gmail.example gmail.example hotmail.example yahoo.example outlook.example
    icloud.example btinternet.example hotmail.co.uk.example yahoo.co.uk.example example.com
""")
SOURCES = ("offline", "direct", "google ads", "social media", "referral", "email campaign")
SOURCE_WEIGHTS = (20, 30, 20, 20, 6, 4)
BIKE_MODELS = ("mendoza v9", "mendoza v10", "kessler v2", "sierra v4")
BIKE_MODEL_WEIGHTS = (60, 20, 12, 8)
