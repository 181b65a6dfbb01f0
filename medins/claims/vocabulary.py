"""The closed vocabularies: every code a bill, a claims file or a policy may name, defined once.

Why: a code is compared, never interpreted. ``cosmetics`` where ``cosmetic`` was meant, or a policy
excluding ``work_injry``, matches nothing and silently changes a payment. So each vocabulary
(causes, item categories, person categories, visit types, zones, hospital kinds) lists its codes
here, with zh/en labels and the Chinese words of exports (aliases); ``policy check`` and every
reader refuse any other code with a "did you mean". A policy may declare extra codes of its own
(top-level ``vocabulary:``), which are then accepted for that policy only (README "Vocabularies").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Code:
    """One code of a vocabulary: its labels and the other words exports use for it."""

    code: str
    zh: str
    en: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vocabulary:
    """A closed set of codes and the claim/item fields whose values it governs."""

    name: str
    zh: str
    en: str
    fields: tuple[str, ...]
    codes: tuple[Code, ...] = field(default_factory=tuple)
    #: Closed at the readers too (a bill's unknown code is refused); False: closed in policies only,
    #: bills may carry any text (diagnoses: a policy names the ones it pays for, a bill may list others).
    closed: bool = True

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.codes)


def _codes(*rows: tuple[str, str, str, tuple[str, ...]]) -> tuple[Code, ...]:
    return tuple(Code(*row) for row in rows)


VOCABULARIES: dict[str, Vocabulary] = {v.name: v for v in (
    Vocabulary("causes", "病因", "causes", ("cause",), _codes(
        ("illness", "疾病", "illness", ("疾病", "病伤")),
        ("work_injury", "工伤", "work injury", ("工伤", "工傷", "工伤事故", "工傷事故", "公伤")),
        ("maternity", "生育", "maternity", ("生育",)),
        ("traffic_accident", "交通事故", "traffic accident", ("交通事故", "车祸", "車禍")),
        ("accident", "其它意外伤害", "other accident", ("意外伤害", "意外", "其它意外伤害", "其他意外伤害")),
        ("suicide", "自杀", "suicide", ("自杀", "自殺")),
        ("self_harm", "自残", "self-harm", ("自残", "自殘", "自伤")),
        ("fighting", "打架斗殴", "fighting", ("打架", "斗殴", "鬥毆", "打架斗殴")),
        ("alcohol", "酗酒", "alcohol", ("酗酒",)),
        ("drugs", "吸毒", "drug use", ("吸毒",)),
        ("crime", "违法犯罪", "crime", ("违法犯罪", "違法犯罪", "违法乱纪")),
        ("std", "性病", "sexually transmitted disease", ("染性病", "性病")),
        ("medical_malpractice", "医疗事故", "medical malpractice", ("医疗事故", "醫療事故")),
        ("third_party", "他人责任", "third-party liability", ("他人责任", "第三方责任")),
        ("pet_bite", "宠物咬伤", "pet bite", ("宠物咬伤",)),
        ("family_planning_violation", "不符合计划生育", "family-planning violation", ("不符合计划生育",)),
        ("cosmetic", "美容整形", "cosmetic treatment", ("美容", "整容")),
    )),
    Vocabulary("item_categories", "费用类别", "item categories", ("item_category",), _codes(
        ("drug", "药品", "drug", ("药品", "药费", "藥費", "西药", "中成药")),
        ("tcm_herbal", "中药饮片", "TCM herbs", ("中药", "中藥", "中草药", "中药饮片")),
        ("exam", "检查费", "examination", ("检查费", "檢查費", "检查")),
        ("special_exam", "特殊检查", "special examination", ("特殊检查", "特检", "特殊检查费", "放宽的特殊检查")),
        ("surgery", "手术费", "surgery", ("手术费", "手術費", "手术")),
        ("treatment", "治疗费", "treatment", ("治疗费", "治療費", "治疗")),
        ("nursing", "护理费", "nursing", ("护理费", "護理費", "护理")),
        ("special_nursing", "特别护理费", "special nursing", ("特别护理费", "特別護理費")),
        ("bed", "床位费", "bed / ward fee", ("床位费", "床位", "住院费", "家庭病房床位费")),
        ("meal", "伙食费", "meals", ("伙食费", "夥食費", "饮食费")),
        ("escort", "陪护费", "escort", ("陪客费", "陪客費", "陪护费")),
        ("nutrition", "营养费", "nutrition", ("营养费", "營養費")),
        ("blood_transfusion", "输血费", "blood transfusion", ("输血费", "輸血費")),
        ("heating_cooling", "冷暖气费", "heating / cooling", ("冷暖气费", "冷暖氣費", "空调费")),
        ("self_care", "自理费用", "self-care costs (air conditioning, meals …)",
         ("生活服务费", "自理费用", "自理项目", "自理")),
        ("ambulance", "救护车费", "ambulance", ("救护车费", "救護費", "救护费")),
        ("home_visit", "出诊费", "home visit", ("出诊费", "出診費")),
        ("rounds", "巡诊费", "rounds", ("巡诊费",)),
        ("urgent_fee", "加急费", "urgent fee", ("检查治疗加急费", "加急费")),
        ("home_care", "家庭医疗保健服务", "home care", ("家庭医疗保健服务",)),
        ("registration", "挂号费", "registration", ("挂号费", "挂号")),
        ("consultation", "诊金", "consultation", ("诊金", "门诊诊金费", "诊查费")),
        ("joint_consultation", "会诊费", "joint consultation", ("会诊费", "會診費")),
        ("records_fee", "病历工本费", "records fee", ("病历工本费", "资料费")),
        ("cosmetic", "美容整容", "cosmetic", ("美容", "整容")),
        ("orthopedic", "矫形", "orthopedic (non-functional)", ("矫形", "矯形")),
        ("weight_loss", "减肥", "weight loss", ("减肥",)),
        ("dental_prosthesis", "镶牙", "dental prosthesis", ("镶牙", "鑲牙")),
        ("dental_cleaning", "洁齿", "dental cleaning", ("洁齿", "洗牙")),
        ("dental_implant", "植牙", "dental implant", ("植牙", "种植牙")),
        ("prosthesis", "假肢", "prosthesis", ("假肢",)),
        ("materials", "医用材料", "medical materials / consumables",
         ("材料", "材料费", "医用材料", "卫生材料", "医用耗材", "耗材")),
        ("implant_imported", "进口人工器官", "imported implant / artificial organ",
         ("进口植入材料", "进口材料", "进口人工器官", "进口人工关节", "进口医用材料")),
        ("organ_transplant", "脏器移植", "organ transplant", ("脏器移植", "髒器移植")),
        ("named_surgeon", "点名手术费", "named-surgeon fee", ("点名手术费", "點名手術費")),
        ("physical_exam", "体检费", "physical examination", ("体检费", "体检")),
        ("counseling", "心理咨询", "counselling", ("心理咨询", "咨询")),
        ("appraisal", "医学鉴定", "medical appraisal", ("医学鉴定", "鉴定")),
        ("vaccination", "预防接种", "vaccination", ("预防接种", "疫苗费", "二类疫苗费")),
        ("decoction_fee", "中药代煎费", "decoction fee", ("中药代煎费", "代煎费")),
        ("hair", "植发", "hair treatment", ("植发", "治疗秃发")),
        ("optometry", "验光配镜", "optometry", ("验光配镜",)),
        ("brace_stent", "支架", "brace / stent", ("支架",)),
        ("addiction", "戒毒戒烟", "addiction treatment", ("戒毒", "戒烟")),
        ("sexual_fertility", "性功能障碍、不孕不育", "sexual dysfunction, infertility", ("不孕不育", "性功能障碍")),
        ("special_needs", "特需医疗", "special-needs care", ("特诊", "特需医疗费", "特需医疗")),
        ("non_therapeutic", "非治疗性费用", "non-therapeutic", ("非治疗性费用",)),
        ("self_purchased_drug", "自购药品", "self-purchased drug", ("自购药品", "自購藥品")),
        ("injection", "注射费", "injection", ("注射费", "注射")),
        ("infusion", "输液费", "infusion", ("输液费", "输液")),
        ("dressing", "换药费", "dressing", ("换药费", "换药")),
        ("suture", "缝合费", "suture", ("缝合费", "缝合")),
        ("lab_routine", "常规化验", "routine lab test", ("常规化验", "化验费")),
        ("xray_analog", "普通放射", "analogue X-ray", ("普通放射", "普通X光")),
        ("ultrasound_bw", "黑白B超", "black-and-white ultrasound", ("黑白B超", "B超")),
        ("ecg", "心电图", "ECG", ("心电图",)),
    )),
    Vocabulary("person_categories", "人员类别", "person categories", ("person_category",), _codes(
        ("resident", "城镇居民", "urban resident", ("城镇居民", "居民")),
        ("resident_other", "其他城镇居民", "other urban resident", ("其他城镇居民",)),
        ("child_student", "少年儿童、中小学生", "child or school pupil", ("少年儿童、中小学生", "中小学生")),
        ("student_child", "学生、儿童", "student or child", ("学生、儿童",)),
        ("student", "大学生", "university student", ("大学生",)),
        ("low_income", "城市低保人员", "urban low-income (dibao)", ("城市低保人员", "低保")),
        ("disabled", "残疾人员", "disabled person", ("残疾人员", "残疾人")),
        ("elderly", "老年居民", "elderly resident", ("老年居民",)),
        ("working_age", "劳动适龄人口", "working-age resident", ("劳动适龄人口",)),
        ("in_service", "在职职工", "employee in service", ("在职职工", "在职")),
        ("retired", "退休人员", "retiree", ("退休人员", "退休")),
        ("rural", "参合农民", "rural (NCMS) enrollee", ("参合农民",)),
        ("village_secretary_director", "村党支部书记、村主任", "village party secretary or director",
         ("村党支部书记、村主任",)),
        ("village_cadre", "其他村干部", "other village cadre", ("其他村干部",)),
    )),
    Vocabulary("visit_types", "就诊类型", "visit types", ("visit_type",), _codes(
        ("inpatient", "住院", "inpatient", ("住院",)),
        ("outpatient", "门诊", "outpatient", ("门诊", "普通门诊")),
        ("outpatient_special", "门诊大病", "outpatient special disease",
         ("门诊大病", "门诊特殊病", "门诊慢特病", "特殊病种门诊", "门诊特殊病种")),
        ("emergency", "急诊", "emergency", ("急诊", "门急诊")),
    )),
    Vocabulary("zones", "就医区域", "zones", ("hospital_zone",), _codes(
        ("in_district", "区内", "in district", ("区内", "本区")),
        ("in_city", "区外市内", "in city, outside the district", ("区外市内", "市内")),
        ("out_of_city", "市外", "outside the city", ("市外", "省内异地")),
        ("out_of_province", "省外", "outside the province", ("省外", "跨省", "跨省异地")),
        ("overseas", "境外", "overseas (incl. HK, Macau, Taiwan)", ("境外",)),
    )),
    Vocabulary("diagnoses", "诊断", "diagnoses", ("diagnosis",), _codes(
        ("dialysis", "尿毒症透析", "uraemia dialysis", ("血透", "透析", "尿毒症透析", "尿毒症门诊血透")),
        ("transplant_antirejection", "器官移植后抗排斥治疗", "anti-rejection therapy after a transplant",
         ("抗排斥治疗", "肝肾移植后抗排斥治疗")),
        ("chemotherapy", "肿瘤化疗", "tumour chemotherapy", ("化疗", "肿瘤化疗")),
        ("radiotherapy", "肿瘤放疗", "tumour radiotherapy", ("放疗", "肿瘤放疗")),
        ("endocrine_therapy", "肿瘤内分泌治疗", "tumour endocrine therapy", ("内分泌治疗",)),
        ("isotope_therapy", "同位素治疗", "isotope therapy", ("同位素治疗",)),
        ("interventional_therapy", "介入治疗", "interventional therapy", ("介入治疗",)),
        ("tcm_antitumour", "中医药抗肿瘤治疗", "TCM anti-tumour treatment", ("中医药抗肿瘤治疗",)),
        ("mental_illness", "精神病", "mental illness", ("精神病",)),
        ("haemophilia", "血友病", "haemophilia", ("血友病",)),
        ("aplastic_anaemia", "再生障碍性贫血", "aplastic anaemia", ("再生障碍性贫血", "再障")),
    ), closed=False),
    Vocabulary("hospital_kinds", "医疗机构类型", "hospital kinds", ("hospital_kind",), _codes(
        ("village_station", "村卫生室", "village clinic", ("村卫生室", "村卫生站")),
        ("community_station", "社区卫生服务站", "community health station", ("社区卫生服务站", "社区卫生服务中心")),
        ("township_hospital", "乡镇卫生院", "township hospital", ("乡镇卫生院", "镇卫生院")),
        ("city_hospital", "市级医院", "city hospital", ("市级医院",)),
        ("hospital", "医院", "hospital", ("医院",)),
    )),
    Vocabulary("assistance_classes", "医疗救助对象类别", "medical-assistance classes", ("assistance_class",), _codes(
        ("extreme_poverty", "特困人员", "person in extreme poverty (特困)", ("特困", "特困人员", "特困供养人员")),
        ("dibao", "低保对象", "minimum-subsistence recipient (低保)", ("低保", "低保对象", "最低生活保障对象")),
        ("dibao_margin", "低保边缘家庭成员", "member of a family at the dibao margin (低保边缘)",
         ("低保边缘", "低保边缘家庭", "低保边缘家庭成员")),
        ("relapse_watch", "防返贫监测对象", "person monitored against relapse into poverty (防返贫监测)",
         ("防返贫监测", "防返贫监测对象", "防止返贫监测对象")),
        ("impoverished_by_illness", "因病致贫重病患者", "seriously ill person impoverished by illness (因病致贫)",
         ("因病致贫", "因病致贫重病患者")),
    )),
)}

#: Field name → the vocabulary governing its values in policies.
FIELD_VOCABULARY: dict[str, Vocabulary] = {f: v for v in VOCABULARIES.values() for f in v.fields}
#: Field name → the vocabulary its values must belong to in bills and claims files as well.
CLOSED_FIELDS: dict[str, Vocabulary] = {f: v for f, v in FIELD_VOCABULARY.items() if v.closed}


def codes_of(name: str, extra: Collection[str] = ()) -> tuple[str, ...]:
    """The codes of vocabulary ``name`` followed by ``extra`` (a policy's own declared codes)."""
    known = VOCABULARIES[name].names
    return known + tuple(c for c in extra if c not in known)


def aliases_of(name: str) -> dict[str, str]:
    """Chinese word → code for one vocabulary (the value aliases of claims files)."""
    return {alias: c.code for c in VOCABULARIES[name].codes for alias in c.aliases}


def close_code(word: str, codes: Collection[str]) -> str | None:
    """The code ``word`` most likely misspells, or None when no code is close (difflib ratio ≥ 0.75).

    Why a high cutoff: a hint must be right when given; ``cosmetics`` → ``cosmetic`` is, but a code
    a policy invents on purpose should be told to declare itself, not offered an unrelated neighbour.
    """
    from medins.errors import close_names

    found = close_names(word, codes)
    return found[0] if found else None


def label(name: str, code: str, lang: str, extra: Mapping[str, tuple[str, str]] | None = None) -> str:
    """The label of ``code`` in ``lang`` (``zh`` or ``en``); the code itself when unknown."""
    for c in VOCABULARIES[name].codes:
        if c.code == code:
            return c.zh if lang == "zh" else c.en
    if extra and code in extra:
        return extra[code][0] if lang == "zh" else extra[code][1]
    return code
