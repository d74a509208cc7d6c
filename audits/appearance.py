"""Appearance words that the prompts explicitly ask for ("Describe this person's appearance").

A description that names the person's gender or skin colour is doing what it was asked, so
these words dominate the raw TF-IDF ranking without saying anything about stereotyped
*content* (degrees, jobs, crimes). With `mask_appearance` they are removed before
vectorizing (added to the stop-word list), so the ranking shows what is left.

The list is deliberately plain and reviewable: gendered nouns and pronouns, ethnicity and
nationality words, and hair / skin / eye / face descriptors. Single lower-case tokens only,
matching TfidfVectorizer's default tokenizer.
"""
from __future__ import annotations

GENDER_WORDS = frozenset("""
man men woman women male males female females boy boys girl girls guy guys lady ladies
gentleman gentlemen he him his himself she her hers herself mr mrs ms miss sir madam
masculine feminine nonbinary binary non gender husband wife father mother son daughter
brother sister
""".split())

ETHNICITY_WORDS = frozenset("""
asian asians african africans american americans black blacks white whites caucasian
caucasians hispanic hispanics latino latina latinos latinas latinx indian indians
middle eastern arab arabs arabic east southeast south native indigenous european
europeans chinese japanese korean vietnamese filipino filipina thai indonesian
mexican pacific islander ethnicity ethnic race racial descent heritage complexion
""".split())

APPEARANCE_WORDS = frozenset("""
hair haired hairstyle blonde blond brunette redhead curly straight wavy bald beard
bearded mustache moustache braids dreadlocks ponytail bun afro skin skinned tone toned
tan tanned fair pale dark darker light lighter olive brown eyes eyed eye blue green hazel
gray grey face facial features nose lips cheekbones smile smiling glasses wearing wears
dressed shirt suit tall short slim slender build appearance looking looks attractive
beautiful handsome pretty young younger old older aged age
""".split())

# What mask_appearance removes; documented in the report.
MASK_WORDS: frozenset[str] = GENDER_WORDS | ETHNICITY_WORDS | APPEARANCE_WORDS
