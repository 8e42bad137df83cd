"""Code tables for synthetic data: real LOINC, UCUM, SNOMED CT, ICD-10-CM, RxNorm, CVX codes."""

from __future__ import annotations

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.7418.1.1"  # the sandbox hospital's MRN namespace

# (loinc, display, ucum unit, low, high, decimals)
VITALS = [
    ("8867-4", "Heart rate", "/min", 55, 110, 0),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 100, 165, 0),
    ("8462-4", "Diastolic blood pressure", "mm[Hg]", 60, 100, 0),
    ("29463-7", "Body weight", "kg", 48, 120, 1),
    ("8310-5", "Body temperature", "Cel", 36.1, 38.4, 1),
]
LABS = [
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 190, 0),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 10.5, 17.5, 1),
]
LAB_PANEL = ("24323-8", "Comprehensive metabolic 2000 panel - Serum or Plasma")

# (snomed, icd10, display)
CONDITIONS = [
    ("59621000", "I10", "Essential hypertension"),
    ("44054006", "E11.9", "Type 2 diabetes mellitus"),
    ("195967001", "J45.909", "Asthma"),
    ("55822004", "E78.5", "Hyperlipidemia"),
    ("235595009", "K21.9", "Gastroesophageal reflux disease"),
    ("370143000", "F32.9", "Major depressive disorder"),
    ("239873007", "M17.9", "Osteoarthritis of knee"),
    ("40930008", "E03.9", "Hypothyroidism"),
]

# (rxnorm, display, dose value, dose unit, times per day)
MEDICATIONS = [
    ("314076", "lisinopril 10 MG Oral Tablet", 10, "mg", 1),
    ("860975", "metformin hydrochloride 500 MG Extended Release Oral Tablet", 500, "mg", 2),
    ("617310", "atorvastatin 20 MG Oral Tablet", 20, "mg", 1),
    ("197361", "amlodipine 5 MG Oral Tablet", 5, "mg", 1),
    ("310965", "ibuprofen 200 MG Oral Tablet", 200, "mg", 3),
    ("966222", "levothyroxine sodium 0.05 MG Oral Tablet", 50, "ug", 1),
]

# (system, code, display)
ALLERGENS = [
    (RXNORM, "7980", "Penicillin G"),
    (SNOMED, "256349002", "Peanut"),
    (SNOMED, "111088007", "Latex"),
    (RXNORM, "10180", "Sulfamethoxazole"),
]
REACTIONS = [("247472004", "Hives"), ("39579001", "Anaphylaxis"), ("271807003", "Rash")]

VACCINES = [
    ("140", "Influenza, seasonal, injectable, preservative free"),
    ("208", "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose"),
    ("115", "Tdap"),
    ("33", "pneumococcal polysaccharide PPV23"),
    ("187", "zoster recombinant"),
]

GIVEN_NAMES = {
    "male": ["James", "Robert", "Michael", "David", "Carlos", "Wei", "Ahmed", "Daniel"],
    "female": ["Mary", "Patricia", "Jennifer", "Linda", "Maria", "Mei", "Fatima", "Sarah"],
}
FAMILY_NAMES = [
    "Smith",
    "Johnson",
    "Garcia",
    "Nguyen",
    "Okafor",
    "Kowalski",
    "Chen",
    "Patel",
    "Brown",
    "Silva",
    "Müller",
    "Haddad",
]
CITIES = [
    ("Springfield", "IL", "62701"),
    ("Madison", "WI", "53703"),
    ("Austin", "TX", "73301"),
    ("Portland", "OR", "97201"),
    ("Columbus", "OH", "43004"),
]
STREETS = ["Oak St", "Maple Ave", "Cedar Ln", "Elm St", "Park Blvd", "Lakeview Dr"]
