"""Countries and their capitals: the facts the pretraining corpus states and the
fine-tuning set asks about.

Every record is a real country with its commonly cited capital. Names are
spelled in plain ASCII (``Bogota``, ``Reykjavik``) so a word-level or small BPE
tokenizer covers them without a byte fallback. A few countries are left out on
purpose because the question "what is the capital of X?" has no single
commonly cited one-word-clean answer: those with several official capitals
(Bolivia, South Africa, Sri Lanka), a recent or disputed move (Burundi, Cote
d'Ivoire, Israel), or a capital spelled exactly like the country (Djibouti,
Singapore, Luxembourg, Monaco), which would let a model answer correctly by
copying the question.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTINENTS = ("Africa", "Asia", "Europe", "North America", "South America", "Oceania")


@dataclass(frozen=True)
class Country:
    """One country and its capital.

    ``name`` is how the country is written at the start of a sentence or on its
    own ("United Kingdom"); ``in_sentence`` is how it is written inside one
    ("the United Kingdom"), which differs only for names that take "the".
    """

    name: str  # "Nigeria"
    capital: str  # "Abuja"
    continent: str  # one of CONTINENTS (transcontinental countries: the commonly used one)
    takes_article: bool = False  # True for "the Netherlands", "the United States", ...

    @property
    def in_sentence(self) -> str:
        """The name as written mid-sentence: "the Philippines", "Kenya"."""
        return f"the {self.name}" if self.takes_article else self.name

    @property
    def possessive(self) -> str:
        """The possessive mid-sentence: "Nigeria's", "the Philippines'"."""
        # A plural-looking name ("the Netherlands") takes a bare apostrophe.
        return f"{self.in_sentence}'" if self.name.endswith("s") else f"{self.in_sentence}'s"


def _c(name: str, capital: str, continent: str, the: bool = False) -> Country:
    return Country(name=name, capital=capital, continent=continent, takes_article=the)


COUNTRIES: tuple[Country, ...] = (
    # Africa
    _c("Algeria", "Algiers", "Africa"),
    _c("Angola", "Luanda", "Africa"),
    _c("Benin", "Porto-Novo", "Africa"),
    _c("Botswana", "Gaborone", "Africa"),
    _c("Burkina Faso", "Ouagadougou", "Africa"),
    _c("Cameroon", "Yaounde", "Africa"),
    _c("Cape Verde", "Praia", "Africa"),
    _c("Central African Republic", "Bangui", "Africa", the=True),
    _c("Comoros", "Moroni", "Africa", the=True),
    _c("Democratic Republic of the Congo", "Kinshasa", "Africa", the=True),
    _c("Republic of the Congo", "Brazzaville", "Africa", the=True),
    _c("Egypt", "Cairo", "Africa"),
    _c("Equatorial Guinea", "Malabo", "Africa"),
    _c("Eritrea", "Asmara", "Africa"),
    _c("Ethiopia", "Addis Ababa", "Africa"),
    _c("Gabon", "Libreville", "Africa"),
    _c("Gambia", "Banjul", "Africa", the=True),
    _c("Ghana", "Accra", "Africa"),
    _c("Guinea", "Conakry", "Africa"),
    _c("Guinea-Bissau", "Bissau", "Africa"),
    _c("Kenya", "Nairobi", "Africa"),
    _c("Lesotho", "Maseru", "Africa"),
    _c("Liberia", "Monrovia", "Africa"),
    _c("Libya", "Tripoli", "Africa"),
    _c("Madagascar", "Antananarivo", "Africa"),
    _c("Malawi", "Lilongwe", "Africa"),
    _c("Mali", "Bamako", "Africa"),
    _c("Mauritania", "Nouakchott", "Africa"),
    _c("Mauritius", "Port Louis", "Africa"),
    _c("Morocco", "Rabat", "Africa"),
    _c("Mozambique", "Maputo", "Africa"),
    _c("Namibia", "Windhoek", "Africa"),
    _c("Niger", "Niamey", "Africa"),
    _c("Nigeria", "Abuja", "Africa"),
    _c("Rwanda", "Kigali", "Africa"),
    _c("Senegal", "Dakar", "Africa"),
    _c("Seychelles", "Victoria", "Africa", the=True),
    _c("Sierra Leone", "Freetown", "Africa"),
    _c("Somalia", "Mogadishu", "Africa"),
    _c("South Sudan", "Juba", "Africa"),
    _c("Sudan", "Khartoum", "Africa"),
    _c("Tanzania", "Dodoma", "Africa"),
    _c("Togo", "Lome", "Africa"),
    _c("Tunisia", "Tunis", "Africa"),
    _c("Uganda", "Kampala", "Africa"),
    _c("Zambia", "Lusaka", "Africa"),
    _c("Zimbabwe", "Harare", "Africa"),
    # Asia
    _c("Afghanistan", "Kabul", "Asia"),
    _c("Armenia", "Yerevan", "Asia"),
    _c("Azerbaijan", "Baku", "Asia"),
    _c("Bahrain", "Manama", "Asia"),
    _c("Bangladesh", "Dhaka", "Asia"),
    _c("Bhutan", "Thimphu", "Asia"),
    _c("Brunei", "Bandar Seri Begawan", "Asia"),
    _c("Cambodia", "Phnom Penh", "Asia"),
    _c("China", "Beijing", "Asia"),
    _c("East Timor", "Dili", "Asia"),
    _c("Georgia", "Tbilisi", "Asia"),
    _c("India", "New Delhi", "Asia"),
    _c("Indonesia", "Jakarta", "Asia"),
    _c("Iran", "Tehran", "Asia"),
    _c("Iraq", "Baghdad", "Asia"),
    _c("Japan", "Tokyo", "Asia"),
    _c("Jordan", "Amman", "Asia"),
    _c("Kazakhstan", "Astana", "Asia"),
    _c("Kuwait", "Kuwait City", "Asia"),
    _c("Kyrgyzstan", "Bishkek", "Asia"),
    _c("Laos", "Vientiane", "Asia"),
    _c("Lebanon", "Beirut", "Asia"),
    _c("Malaysia", "Kuala Lumpur", "Asia"),
    _c("Maldives", "Male", "Asia", the=True),
    _c("Mongolia", "Ulaanbaatar", "Asia"),
    _c("Myanmar", "Naypyidaw", "Asia"),
    _c("Nepal", "Kathmandu", "Asia"),
    _c("North Korea", "Pyongyang", "Asia"),
    _c("Oman", "Muscat", "Asia"),
    _c("Pakistan", "Islamabad", "Asia"),
    _c("Philippines", "Manila", "Asia", the=True),
    _c("Qatar", "Doha", "Asia"),
    _c("Saudi Arabia", "Riyadh", "Asia"),
    _c("South Korea", "Seoul", "Asia"),
    _c("Syria", "Damascus", "Asia"),
    _c("Tajikistan", "Dushanbe", "Asia"),
    _c("Thailand", "Bangkok", "Asia"),
    _c("Turkey", "Ankara", "Asia"),
    _c("Turkmenistan", "Ashgabat", "Asia"),
    _c("United Arab Emirates", "Abu Dhabi", "Asia", the=True),
    _c("Uzbekistan", "Tashkent", "Asia"),
    _c("Vietnam", "Hanoi", "Asia"),
    _c("Yemen", "Sanaa", "Asia"),
    # Europe
    _c("Albania", "Tirana", "Europe"),
    _c("Andorra", "Andorra la Vella", "Europe"),
    _c("Austria", "Vienna", "Europe"),
    _c("Belarus", "Minsk", "Europe"),
    _c("Belgium", "Brussels", "Europe"),
    _c("Bosnia and Herzegovina", "Sarajevo", "Europe"),
    _c("Bulgaria", "Sofia", "Europe"),
    _c("Croatia", "Zagreb", "Europe"),
    _c("Cyprus", "Nicosia", "Europe"),
    _c("Czech Republic", "Prague", "Europe", the=True),
    _c("Denmark", "Copenhagen", "Europe"),
    _c("Estonia", "Tallinn", "Europe"),
    _c("Finland", "Helsinki", "Europe"),
    _c("France", "Paris", "Europe"),
    _c("Germany", "Berlin", "Europe"),
    _c("Greece", "Athens", "Europe"),
    _c("Hungary", "Budapest", "Europe"),
    _c("Iceland", "Reykjavik", "Europe"),
    _c("Ireland", "Dublin", "Europe"),
    _c("Italy", "Rome", "Europe"),
    _c("Latvia", "Riga", "Europe"),
    _c("Liechtenstein", "Vaduz", "Europe"),
    _c("Lithuania", "Vilnius", "Europe"),
    _c("Malta", "Valletta", "Europe"),
    _c("Moldova", "Chisinau", "Europe"),
    _c("Montenegro", "Podgorica", "Europe"),
    _c("Netherlands", "Amsterdam", "Europe", the=True),
    _c("North Macedonia", "Skopje", "Europe"),
    _c("Norway", "Oslo", "Europe"),
    _c("Poland", "Warsaw", "Europe"),
    _c("Portugal", "Lisbon", "Europe"),
    _c("Romania", "Bucharest", "Europe"),
    _c("Russia", "Moscow", "Europe"),
    _c("Serbia", "Belgrade", "Europe"),
    _c("Slovakia", "Bratislava", "Europe"),
    _c("Slovenia", "Ljubljana", "Europe"),
    _c("Spain", "Madrid", "Europe"),
    _c("Sweden", "Stockholm", "Europe"),
    _c("Switzerland", "Bern", "Europe"),
    _c("Ukraine", "Kyiv", "Europe"),
    _c("United Kingdom", "London", "Europe", the=True),
    # North America (with Central America and the Caribbean)
    _c("Bahamas", "Nassau", "North America", the=True),
    _c("Barbados", "Bridgetown", "North America"),
    _c("Belize", "Belmopan", "North America"),
    _c("Canada", "Ottawa", "North America"),
    _c("Costa Rica", "San Jose", "North America"),
    _c("Cuba", "Havana", "North America"),
    _c("Dominica", "Roseau", "North America"),
    _c("Dominican Republic", "Santo Domingo", "North America", the=True),
    _c("El Salvador", "San Salvador", "North America"),
    _c("Guatemala", "Guatemala City", "North America"),
    _c("Haiti", "Port-au-Prince", "North America"),
    _c("Honduras", "Tegucigalpa", "North America"),
    _c("Jamaica", "Kingston", "North America"),
    _c("Mexico", "Mexico City", "North America"),
    _c("Nicaragua", "Managua", "North America"),
    _c("Panama", "Panama City", "North America"),
    _c("Saint Lucia", "Castries", "North America"),
    _c("Trinidad and Tobago", "Port of Spain", "North America"),
    _c("United States", "Washington", "North America", the=True),
    # South America
    _c("Argentina", "Buenos Aires", "South America"),
    _c("Brazil", "Brasilia", "South America"),
    _c("Chile", "Santiago", "South America"),
    _c("Colombia", "Bogota", "South America"),
    _c("Ecuador", "Quito", "South America"),
    _c("Guyana", "Georgetown", "South America"),
    _c("Paraguay", "Asuncion", "South America"),
    _c("Peru", "Lima", "South America"),
    _c("Suriname", "Paramaribo", "South America"),
    _c("Uruguay", "Montevideo", "South America"),
    _c("Venezuela", "Caracas", "South America"),
    # Oceania
    _c("Australia", "Canberra", "Oceania"),
    _c("Fiji", "Suva", "Oceania"),
    _c("Marshall Islands", "Majuro", "Oceania", the=True),
    _c("Micronesia", "Palikir", "Oceania"),
    _c("New Zealand", "Wellington", "Oceania"),
    _c("Palau", "Ngerulmud", "Oceania"),
    _c("Papua New Guinea", "Port Moresby", "Oceania"),
    _c("Samoa", "Apia", "Oceania"),
    _c("Solomon Islands", "Honiara", "Oceania", the=True),
    _c("Tuvalu", "Funafuti", "Oceania"),
    _c("Vanuatu", "Port Vila", "Oceania"),
)

COUNTRY_BY_NAME: dict[str, Country] = {country.name: country for country in COUNTRIES}
