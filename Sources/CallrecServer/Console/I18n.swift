import Foundation
import Hummingbird

/// The console's two languages: pt-BR and English, chosen by `?lang=` (kept in a cookie), else
/// the cookie, else `Accept-Language`.
enum Lang: String, Sendable {
    case en = "en"
    case pt = "pt-BR"

    static let cookie = "callrec_lang"

    static func from(_ request: Request) -> (Lang, setCookie: Bool) {
        if let q = request.uri.queryParameters["lang"].map(String.init), let l = parse(q) { return (l, true) }
        if let c = ConsoleSessions.cookieValue(request, cookie), let l = parse(c) { return (l, false) }
        // Accept-Language: the first of pt* or en*, by q-value.
        let header = request.headers[.acceptLanguage] ?? ""
        var best: (Lang, Double)?
        for item in header.split(separator: ",") {
            let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let tag = parts.first, let l = parse(tag) else { continue }
            let q = parts.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            if best == nil || q > best!.1 { best = (l, q) }
        }
        return (best?.0 ?? .en, false)
    }

    static func parse(_ s: String) -> Lang? {
        let l = s.lowercased()
        if l.hasPrefix("pt") { return .pt }
        if l.hasPrefix("en") { return .en }
        return nil
    }

    var other: Lang { self == .en ? .pt : .en }
    var locale: Locale { Locale(identifier: self == .en ? "en_US" : "pt_BR") }

    func t(_ key: String) -> String {
        guard let pair = Self.strings[key] else { return key }
        return self == .en ? pair.0 : pair.1
    }

    static let strings: [String: (String, String)] = [
        "title": ("Call recordings", "Gravações de chamadas"),
        "signin": ("Sign in", "Entrar"),
        "username": ("User name", "Usuário"),
        "password": ("Password", "Senha"),
        "bad_login": ("Wrong user name or password.", "Usuário ou senha incorretos."),
        "throttled": ("Too many failed attempts. Try again in %d minutes.", "Tentativas demais sem sucesso. Tente de novo em %d minutos."),
        "signout": ("Sign out", "Sair"),
        "search": ("Search", "Buscar"),
        "exports": ("Exports", "Exportações"),
        "audit": ("Audit log", "Registro de auditoria"),
        "from": ("From", "De"),
        "to": ("To (inclusive)", "Até (inclusive)"),
        "agent": ("Agent", "Agente"),
        "lead": ("Lead number", "Número do lead"),
        "company": ("Company", "Empresa"),
        "any": ("any", "qualquer"),
        "today": ("Today", "Hoje"),
        "yesterday": ("Yesterday", "Ontem"),
        "last7": ("Last 7 days", "Últimos 7 dias"),
        "start": ("Start", "Início"),
        "duration": ("Duration", "Duração"),
        "talk": ("Talk", "Fala"),
        "hold": ("Legal hold", "Retenção legal"),
        "held": ("On hold", "Retida"),
        "load_more": ("Load more", "Carregar mais"),
        "no_results": ("No recordings match.", "Nenhuma gravação encontrada."),
        "loading": ("Loading…", "Carregando…"),
        "timezone": ("Time zone", "Fuso horário"),
        "speed": ("Speed", "Velocidade"),
        "keys": ("Keys: space plays or pauses, ← → move 5 s.", "Teclas: espaço toca ou pausa, ← → movem 5 s."),
        "measurements": ("Measurements", "Medições"),
        "metadata": ("Call", "Chamada"),
        "silence": ("Silence", "Silêncio"),
        "peak": ("Peak", "Pico"),
        "rms": ("RMS level", "Nível RMS"),
        "clipped": ("Clipped samples", "Amostras saturadas"),
        "channels": ("Channels", "Canais"),
        "pauses": ("PCI pauses", "Pausas PCI"),
        "paused_by": ("paused by %@", "pausada por %@"),
        "pause_not_silent": ("(no silence in the audio there: check it)", "(o áudio não está em silêncio ali: verifique)"),
        "gaps": ("Not recorded", "Não gravado"),
        "gap_at": ("at %@, %@ s (%@)", "em %@, %@ s (%@)"),
        "gap_not_bridged": ("not bridged: MixMonitor's b option drops it", "fora da ponte: a opção b do MixMonitor descarta"),
        "gap_unexplained": ("cause not known", "causa desconhecida"),
        "sample_rate": ("Sample rate", "Taxa de amostragem"),
        "parts": ("Parts", "Partes"),
        "source": ("Source", "Origem"),
        "reason": ("Reason", "Motivo"),
        "hold_submit": ("Put on hold", "Reter"),
        "release_submit": ("Release hold", "Liberar retenção"),
        "listened": ("Who listened", "Quem ouviu"),
        "nobody": ("Nobody yet.", "Ninguém ainda."),
        "export_title": ("Export a date range", "Exportar um período"),
        "export_submit": ("Export", "Exportar"),
        "download": ("Download the ZIP", "Baixar o ZIP"),
        "export_failed": ("The export failed", "A exportação falhou"),
        "when": ("When", "Quando"),
        "role": ("Role", "Papel"),
        "who": ("Who", "Quem"),
        "action": ("Action", "Ação"),
        "recording": ("Recording", "Gravação"),
        "detail": ("Detail", "Detalhe"),
        "client": ("Address", "Endereço"),
        "filter": ("Filter", "Filtrar"),
        "not_found": ("Not found", "Não encontrado"),
        "not_found_text": ("There is no such recording, or it is not yours to see.", "Essa gravação não existe ou não está visível para você."),
        "forbidden": ("Not allowed", "Não permitido"),
        "sso_refused": ("This sign-in link is not valid (expired, already used, or not signed by the CRM).", "Este link de acesso não é válido (expirou, já foi usado ou não foi assinado pelo CRM)."),
        "continue": ("Continue", "Continuar"),
        "held_by": ("held by %@: %@", "retida por %@: %@"),
        "error": ("Something went wrong", "Algo deu errado"),
        "left": ("left", "esquerdo"),
        "right": ("right", "direito"),
        "role_agent": ("agent", "agente"),
        "role_customer": ("customer", "cliente"),
        "min_duration": ("Min. duration (s)", "Duração mín. (s)"),
        "held_only": ("On hold only", "Só retidas"),
        "live_title": ("Being recorded now", "Gravando agora"),
        "live_none": ("No call is being recorded now.", "Nenhuma chamada sendo gravada agora."),
        "live_new": ("new", "nova"),
        "erasure": ("Erasure", "Eliminação"),
        "erasure_title": ("Erase every recording of a lead number", "Eliminar todas as gravações de um número de lead"),
        "erasure_text": ("This deletes every recording of the number, their files and metadata, for good (recordings under legal hold are kept and listed). It cannot be undone.", "Isto apaga de vez todas as gravações do número, seus arquivos e metadados (gravações em retenção legal são mantidas e listadas). Não pode ser desfeito."),
        "erasure_again": ("Type the lead number again to confirm", "Digite o número do lead de novo para confirmar"),
        "erasure_submit": ("Erase", "Eliminar"),
        "erasure_mismatch": ("The two numbers differ: nothing was erased.", "Os dois números são diferentes: nada foi eliminado."),
        "erasure_done": ("Erased %d recording(s); %d kept under legal hold.", "%d gravação(ões) eliminada(s); %d mantida(s) em retenção legal."),
        "retention": ("Retention", "Retenção"),
        "retention_title": ("Retention policies", "Políticas de retenção"),
        "retention_default": ("Default: recordings are kept %d days.", "Padrão: as gravações são mantidas por %d dias."),
        "days": ("Days", "Dias"),
        "save": ("Save", "Salvar"),
        "remove": ("Remove", "Remover"),
        "retention_add": ("Set a company's retention", "Definir a retenção de uma empresa"),
        "no_overrides": ("No company has its own retention.", "Nenhuma empresa tem retenção própria."),
        "quarantine": ("Quarantine", "Quarentena"),
        "quarantine_title": ("Quarantined files", "Arquivos em quarentena"),
        "quarantine_none": ("Nothing is quarantined.", "Nada está em quarentena."),
        "file": ("File", "Arquivo"),
        "size": ("Size", "Tamanho"),
        "retry": ("Retry", "Tentar de novo"),
    ]
}
