//! Word lists for the personal-data masker: frequent first names in Colombia, words that end a name, and the
//! phrases after which a name is expected. All folded (lower case, no accents).
//!
//! The first-name list is positive evidence for names in ALL CAPS or all lower-case text, where capitals say
//! nothing. It was written from general knowledge of frequent Colombian given names (including the spellings
//! common in civil registries: `jhon`, `yeison`, `brayan`), not from any data set.

/// Frequent Colombian given names, folded, including the spellings of civil registries.
#[rustfmt::skip]
pub const FIRST_NAMES: &[&str] = &[
    "abelardo", "abigail", "adela", "adolfo", "adriana", "agustin", "aida", "alba", "albeiro", "alberto", "alcides",
    "alcira", "alejandra", "alejandro", "alex", "alexander", "alexandra", "alexis", "alfonso", "alfredo", "alicia",
    "alirio", "alonso", "alvaro", "amanda", "amilcar", "amparo", "ana", "anderson", "andrea", "andres", "angel",
    "angela", "angelica", "anibal", "antonio", "arbey", "arcesio", "argemiro", "arley", "armando", "arnulfo",
    "arturo", "astrid", "aura", "aurora", "beatriz", "bernardo", "berta", "bertha", "blanca", "brahian", "brandon",
    "braulio", "brayan", "bryan", "camila", "camilo", "carlos", "carmen", "carolina", "catalina", "cecilia",
    "cesar", "clara", "claudia", "conrado", "consuelo", "cristian", "cristina", "cristobal", "dairo", "damaris",
    "daniel", "daniela", "danilo", "dario", "darwin", "dary", "david", "deisy", "diana", "diego", "diomedes",
    "dora", "doris", "duberney", "dubian", "duvan", "edgar", "edilma", "edilson", "edison", "eduardo", "edwar",
    "edwin", "efrain", "eider", "elena", "eliana", "eliecer", "elizabeth", "elkin", "elsa", "elsy", "elvia",
    "emerson", "emilio", "emilse", "enrique", "erika", "ernesto", "esneider", "esneyder", "esperanza", "esteban",
    "estefania", "estella", "estiven", "eucaris", "eugenia", "evelio", "fabian", "fabio", "fabiola", "fanny",
    "felipe", "fernanda", "fernando", "ferney", "francisco", "franklin", "freddy", "fredy", "gabriel", "gabriela",
    "gerardo", "german", "gilberto", "gildardo", "giovanni", "gladys", "gloria", "gonzalo", "graciela", "gregorio",
    "guillermo", "gustavo", "harold", "hector", "helena", "heriberto", "hernan", "hernando", "herney", "hilda",
    "hugo", "humberto", "ines", "ingrid", "irma", "isabel", "isabella", "ivan", "jackeline", "jaime", "jairo",
    "james", "javier", "jazmin", "jefferson", "jennifer", "jenny", "jessica", "jesus", "jhoan", "jhojan", "jhon",
    "jhonatan", "jhonny", "jhorman", "johan", "johana", "john", "jonathan", "jorge", "jose", "josefina", "jovany",
    "juan", "julian", "juliana", "julio", "juvenal", "karen", "katherine", "kelly", "kevin", "laura", "leidy",
    "leonardo", "leonel", "leonidas", "leydi", "libardo", "libia", "lida", "ligia", "lilia", "liliana", "lina",
    "lorena", "lucas", "lucely", "lucero", "lucia", "luis", "luisa", "luz", "luzmila", "manuel", "manuela",
    "marcela", "marco", "marcos", "margarita", "maria", "mariana", "maribel", "marina", "mario", "marleny",
    "marlon", "marta", "martha", "martin", "maryori", "mateo", "mauricio", "mayerli", "mercedes", "miguel",
    "mildred", "milena", "milton", "mireya", "miriam", "miryam", "monica", "natalia", "nataly", "nelly", "nelson",
    "nestor", "nicolas", "nidia", "nora", "norma", "nubia", "octavio", "olga", "omaira", "oneida", "orlando",
    "oscar", "osvaldo", "pablo", "paola", "patricia", "paula", "pedro", "piedad", "pilar", "rafael", "ramiro",
    "raul", "reinaldo", "ricardo", "rigoberto", "roberto", "rocio", "rodrigo", "rosa", "rosalba", "ruben",
    "rubiela", "ruth", "salome", "samuel", "sandra", "sandro", "santiago", "sara", "sebastian", "sergio", "silvia",
    "sneider", "sofia", "sonia", "sorany", "stella", "steven", "stiven", "susana", "tatiana", "teresa", "tomas",
    "tulio", "uriel", "valentina", "valeria", "vanessa", "veronica", "victor", "viviana", "walter", "wberney",
    "weimar", "wilber", "wilfer", "wilfredo", "william", "wilmar", "wilmer", "wilson", "ximena", "yamile", "yaneth",
    "yaqueline", "yeison", "yenifer", "yenny", "yeraldin", "yesenia", "yesica", "yessica", "yineth", "yolanda",
    "yorladys", "yudy", "yuliana", "yulieth", "yurany", "yury", "yusmary", "zoraida", "zulma",
];

/// Words that cannot be part of a name: they end a name that has started, and a name cannot start with them.
#[rustfmt::skip]
pub const NOT_NAME: &[&str] = &[
    // Function words and chat shorthand.
    "a", "al", "ante", "asi", "aun", "como", "con", "cual", "cuando", "de", "del", "desde", "donde", "e", "el",
    "ella", "ellos", "en", "entre", "es", "esta", "este", "esto", "fue", "ha", "hace", "hay", "la", "las", "le",
    "les", "lo", "los", "mas", "me", "mi", "mis", "muy", "ni", "no", "nos", "o", "para", "pero", "por", "porque",
    "pq", "q", "que", "quien", "quienes", "se", "si", "sin", "su", "sus", "tambien", "te", "tu", "u", "un", "una",
    "x", "xfa", "xq", "y", "ya", "yo",
    // First-person verbs and adjectives that follow a signature or an introduction on a mailbox card.
    "agradezco", "amable", "buena", "bueno", "era", "escribo", "estaba", "estoy", "excelente", "felicito", "fui",
    "grosera", "grosero", "mala", "malo", "mayor", "necesito", "pague", "pido", "quiero", "residente", "solicito",
    "soy", "tengo", "tenia", "trabajo", "vengo", "vivo", "voy",
    // Verbs that follow a client's or an employee's name in intake notes.
    "agradece", "comenta", "consulta", "deja", "dejo", "desea", "dice", "expresa", "felicita", "indica",
    "indicando", "informa", "llama", "llamo", "manifiesta", "manifestando", "necesita", "pide", "pregunta",
    "presenta", "quiere", "radica", "reclama", "refiere", "reporta", "requiere", "sugiere", "solicita",
    "solicitando", "tiene", "vive", "deletrea",
    // Identity and contact words that follow a name.
    "cc", "ce", "cedula", "cel", "celular", "correo", "direccion", "doc", "documento", "email", "id",
    "identificada", "identificado", "identificacion", "nit", "pasaporte", "ppt", "tel", "telefono", "ti",
    "whatsapp",
    // Roles, relatives and titles: they introduce a name, they are not one.
    "afiliada", "afiliado", "asesor", "asesora", "auxiliar", "beneficiaria", "beneficiario", "cajera", "cajero",
    "cliente", "coordinador", "coordinadora", "cotizante", "don", "dona", "doctor", "doctora", "dr", "dra",
    "empleador", "enfermera", "enfermero", "esposa", "esposo", "funcionaria", "funcionario", "gerente", "guarda",
    "hija", "hijo", "jefe", "joven", "madre", "mama", "medico", "medica", "nieta", "nieto", "nina", "nino", "padre",
    "papa", "paciente", "profesor", "profesora", "senor", "senora", "sr", "sra", "usuaria", "usuario", "vigilante",
    "senorita", "suegra", "suegro", "titular",
    // Words that describe the writer instead of naming them.
    "adulto", "afiliada", "desempleada", "desempleado", "estudiante", "independiente", "pensionada", "pensionado",
    "trabajador", "trabajadora", "venezolana", "venezolano",
    // Greetings and closings.
    "buenas", "buenos", "cordial", "dias", "felicitaciones", "gracias", "hola", "noches", "saludo", "saludos",
    "tardes",
    // Company suffixes: `Confecciones Lina Ltda` is a company, not a person.
    "ltda", "limitada", "sas", "cia", "asociados", "hermanos",
    // Places and the caja, which look like names in capitalised text.
    "antioquia", "bogota", "caja", "colombia", "comfama", "envigado", "eps", "ips", "itagui", "medellin",
    "rionegro", "sabaneta", "sede",
];

/// Particles allowed inside a name in mixed-case text (`María de los Ángeles`), never at its ends.
pub const NAME_PARTICLES: &[&str] = &["de", "del", "la", "las", "los"];

/// How a trigger introduces a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerStrength {
    /// The writer says a name follows (`mi nombre es`, `Nombre:`, a closing): any word that is not in
    /// [`NOT_NAME`] may start it.
    Explicit,
    /// A role or relative that is often, not always, followed by a name (`la afiliada`, `mi hijo`, `soy`):
    /// in text without usable capitals the first word must be a known first name.
    Role,
}

/// Phrases after which a name is expected, folded, with their strength and whether a `:` must follow them (form
/// labels such as `Nombre:` and the `De:` line of an e-mail).
#[rustfmt::skip]
pub const TRIGGERS: &[(&str, TriggerStrength, bool)] = &[
    // The writer says a name follows.
    ("mi nombre es", TriggerStrength::Explicit, false),
    ("su nombre es", TriggerStrength::Explicit, false),
    ("me llamo", TriggerStrength::Explicit, false),
    ("se llama", TriggerStrength::Explicit, false),
    ("nombre", TriggerStrength::Explicit, true),
    ("nombres", TriggerStrength::Explicit, true),
    ("nombre completo", TriggerStrength::Explicit, true),
    ("nombres y apellidos", TriggerStrength::Explicit, true),
    ("apellidos", TriggerStrength::Explicit, true),
    ("habla con", TriggerStrength::Explicit, false),
    ("att", TriggerStrength::Explicit, false),
    ("atte", TriggerStrength::Explicit, false),
    ("atentamente", TriggerStrength::Explicit, false),
    ("cordialmente", TriggerStrength::Explicit, false),
    ("quedo atento", TriggerStrength::Explicit, false),
    ("quedo atenta", TriggerStrength::Explicit, false),
    ("firma", TriggerStrength::Explicit, false),
    ("les escribe", TriggerStrength::Explicit, false),
    ("indica ser", TriggerStrength::Explicit, false),
    ("de", TriggerStrength::Explicit, true),
    ("dice llamarse", TriggerStrength::Explicit, false),
    ("llamarse", TriggerStrength::Explicit, false),
    ("de apellido", TriggerStrength::Explicit, false),
    ("a nombre de", TriggerStrength::Explicit, false),
    ("con el nombre", TriggerStrength::Explicit, false),
    ("firmado", TriggerStrength::Explicit, false),
    ("titular", TriggerStrength::Explicit, true),
    ("yo", TriggerStrength::Role, false),
    // Abbreviated and courtesy titles are followed by a name, often a surname alone.
    ("dr", TriggerStrength::Explicit, false),
    ("dra", TriggerStrength::Explicit, false),
    ("doctor", TriggerStrength::Explicit, false),
    ("doctora", TriggerStrength::Explicit, false),
    ("sr", TriggerStrength::Explicit, false),
    ("sra", TriggerStrength::Explicit, false),
    ("don", TriggerStrength::Explicit, false),
    ("dona", TriggerStrength::Explicit, false),
    // Roles and relatives, often (not always) followed by a name.
    ("saludos", TriggerStrength::Role, false),
    ("soy", TriggerStrength::Role, false),
    ("se comunica", TriggerStrength::Role, false),
    ("llama", TriggerStrength::Role, false),
    ("llamen a", TriggerStrength::Role, false),
    ("llamada de", TriggerStrength::Role, false),
    ("atendio", TriggerStrength::Role, false),
    ("atendida por", TriggerStrength::Role, false),
    ("atendido por", TriggerStrength::Role, false),
    ("agradezco a", TriggerStrength::Role, false),
    ("gracias a", TriggerStrength::Role, false),
    ("felicitar a", TriggerStrength::Role, false),
    ("afil", TriggerStrength::Role, false),
    ("afiliada", TriggerStrength::Role, false),
    ("afiliado", TriggerStrength::Role, false),
    ("usuaria", TriggerStrength::Role, false),
    ("usuario", TriggerStrength::Role, false),
    ("paciente", TriggerStrength::Role, false),
    ("beneficiaria", TriggerStrength::Role, false),
    ("beneficiario", TriggerStrength::Role, false),
    ("senora", TriggerStrength::Role, false),
    ("senor", TriggerStrength::Role, false),
    ("funcionaria", TriggerStrength::Role, false),
    ("funcionario", TriggerStrength::Role, false),
    ("asesora", TriggerStrength::Role, false),
    ("asesor", TriggerStrength::Role, false),
    ("auxiliar", TriggerStrength::Role, false),
    ("enfermera", TriggerStrength::Role, false),
    ("enfermero", TriggerStrength::Role, false),
    ("profesor", TriggerStrength::Role, false),
    ("profesora", TriggerStrength::Role, false),
    ("guarda", TriggerStrength::Role, false),
    ("vigilante", TriggerStrength::Role, false),
    ("cajero", TriggerStrength::Role, false),
    ("cajera", TriggerStrength::Role, false),
    ("nina", TriggerStrength::Role, false),
    ("joven", TriggerStrength::Role, false),
    ("empleador", TriggerStrength::Role, false),
    ("mi hijo", TriggerStrength::Role, false),
    ("mi hija", TriggerStrength::Role, false),
    ("su hijo", TriggerStrength::Role, false),
    ("su hija", TriggerStrength::Role, false),
    ("mi esposa", TriggerStrength::Role, false),
    ("mi esposo", TriggerStrength::Role, false),
    ("su esposa", TriggerStrength::Role, false),
    ("su esposo", TriggerStrength::Role, false),
    ("mi mama", TriggerStrength::Role, false),
    ("mi papa", TriggerStrength::Role, false),
    ("mi madre", TriggerStrength::Role, false),
    ("mi padre", TriggerStrength::Role, false),
    ("su mama", TriggerStrength::Role, false),
    ("su papa", TriggerStrength::Role, false),
    ("su madre", TriggerStrength::Role, false),
    ("su padre", TriggerStrength::Role, false),
    ("mi suegra", TriggerStrength::Role, false),
    ("mi suegro", TriggerStrength::Role, false),
    ("mi nieto", TriggerStrength::Role, false),
    ("mi nieta", TriggerStrength::Role, false),
    ("mi hermano", TriggerStrength::Role, false),
    ("mi hermana", TriggerStrength::Role, false),
    ("senorita", TriggerStrength::Role, false),
    ("trabajador", TriggerStrength::Role, false),
    ("trabajadora", TriggerStrength::Role, false),
    ("cotizante", TriggerStrength::Role, false),
    ("coordinador", TriggerStrength::Role, false),
    ("coordinadora", TriggerStrength::Role, false),
];
